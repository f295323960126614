// The Turnstile site key for the sign-in form. Without one (local runs and
// tests), the form sends TURNSTILE_DEV_TOKEN, which the gateway's verifier
// must accept: leave it empty on Cloudflare.
export function load({ platform }) {
  const env = platform?.env ?? {};
  return { turnstileSiteKey: env.TURNSTILE_SITE_KEY ?? "", devToken: env.TURNSTILE_DEV_TOKEN ?? "" };
}
