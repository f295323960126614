//! TLS certificates per SNI name, for rustls. [`CertStore::refresh`] reads
//! a pair again when either file changed (a renewed certificate), keeping
//! the old pair when the new one does not load.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::Certificate;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {why}", path.display())]
    File { path: PathBuf, why: String },
    #[error("{}: the private key does not match the certificate or is of an unsupported type: {why}", path.display())]
    Key { path: PathBuf, why: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

#[derive(Debug)]
struct Entry {
    names: Vec<String>,
    cert: PathBuf,
    key: PathBuf,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    certified: Arc<CertifiedKey>,
}

/// The certificates served, by SNI name.
#[derive(Debug, Default)]
pub struct CertStore {
    entries: RwLock<Vec<Entry>>,
}

fn stamp(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let file_err = |path: &Path, why: String| TlsError::File {
        path: path.to_path_buf(),
        why,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_err(cert, "no PEM CERTIFICATE block".into()));
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_err(key, format!("no usable PEM private key: {e}")))?;
    let signing = provider::sign::any_supported_type(&der).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        why: e.to_string(),
    })?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        why: e.to_string(),
    })?;
    Ok(Arc::new(ck))
}

impl CertStore {
    pub fn load(certs: &[Certificate]) -> Result<CertStore, TlsError> {
        let mut entries = Vec::new();
        for c in certs {
            entries.push(Entry {
                names: c.names.iter().map(|n| n.to_ascii_lowercase()).collect(),
                stamps: (stamp(&c.cert), stamp(&c.key)),
                certified: load_pair(&c.cert, &c.key)?,
                cert: c.cert.clone(),
                key: c.key.clone(),
            });
        }
        Ok(CertStore {
            entries: RwLock::new(entries),
        })
    }

    /// Serves `certs` from now on (a reloaded zone file); on error the
    /// current certificates stay.
    pub fn replace(&self, certs: &[Certificate]) -> Result<(), TlsError> {
        let fresh = CertStore::load(certs)?;
        let entries = fresh
            .entries
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = entries;
        Ok(())
    }

    /// Reloads every pair whose files changed; returns how many were
    /// replaced, and the errors of those that failed (they keep serving
    /// the previous pair).
    pub fn refresh(&self) -> (usize, Vec<TlsError>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let mut replaced = 0;
        let mut errors = Vec::new();
        for e in entries.iter_mut() {
            let now = (stamp(&e.cert), stamp(&e.key));
            if now == e.stamps {
                continue;
            }
            match load_pair(&e.cert, &e.key) {
                Ok(ck) => {
                    e.certified = ck;
                    e.stamps = now;
                    replaced += 1;
                }
                Err(err) => errors.push(err),
            }
        }
        (replaced, errors)
    }

    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        if let Some(name) = sni.map(str::to_ascii_lowercase) {
            if let Some(e) = entries.iter().find(|e| e.names.contains(&name)) {
                return Some(e.certified.clone());
            }
            let parent = name.split_once('.').map(|(_, rest)| format!("*.{rest}"));
            if let Some(p) = parent
                && let Some(e) = entries.iter().find(|e| e.names.contains(&p))
            {
                return Some(e.certified.clone());
            }
        }
        entries
            .iter()
            .find(|e| e.names.iter().any(|n| n == "*"))
            .or_else(|| entries.first().filter(|_| sni.is_none()))
            .map(|e| e.certified.clone())
    }
}

#[derive(Debug)]
struct Resolver(Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.pick(hello.server_name())
    }
}

/// A rustls server config over `store`, offering HTTP/2 and HTTP/1.1 by
/// ALPN.
pub fn server_config(store: Arc<CertStore>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut cfg =
        rustls::ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(store)));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
