//! Reads Cloudflare wrangler.toml / wrangler.json / wrangler.jsonc into a typed, validated Config.
