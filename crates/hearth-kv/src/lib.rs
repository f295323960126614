//! Workers KV: the KvNamespace contract and its embedded SQLite backend.
