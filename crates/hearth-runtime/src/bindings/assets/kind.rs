//! How `assets` is served: the asset server the HTTP front puts ahead of
//! (or behind) the worker, and `env[assets.binding]` when one is named.

use std::sync::Arc;

use hearth_assets::{AssetLimits, AssetOptions, AssetServer};

use super::AssetsAdapter;
use crate::bindings::registry::{BindingError, BindingKind, OpenContext, OpenedWorker};

pub struct AssetsKind;

impl BindingKind for AssetsKind {
    fn section(&self) -> &'static str {
        "assets"
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let config = cx.config;
        let (Some(assets), Some(dir)) = (&config.assets, config.assets_dir()) else {
            return Ok(());
        };
        // The data directories and the served configs (with any other
        // wrangler file beside them) are never assets, even with
        // `directory = "."`.
        let mut protected = Vec::new();
        for s in cx.served {
            protected.push(s.data_dir.root().to_path_buf());
            protected.push(s.config.path.clone());
            protected.extend(
                hearth_config::CONFIG_FILE_NAMES
                    .iter()
                    .map(|name| s.config.dir().join(name))
                    .filter(|path| path.is_file() && *path != s.config.path),
            );
        }
        let server = AssetServer::open_protecting(
            &dir,
            AssetOptions::from(assets),
            AssetLimits::default(),
            &protected,
        )
        .map_err(|e| {
            BindingError::new(format!("{}: assets.directory: {e}", config.path.display()))
        })?;
        for warning in server.warnings() {
            tracing::warn!("{warning}");
        }
        tracing::info!("serving static assets from {}", server.root().display());
        let server = Arc::new(server);
        if let Some(name) = &assets.binding {
            out.worker
                .bindings
                .push(Arc::new(AssetsAdapter::new(name, server.clone())));
        }
        out.assets = Some(server);
        Ok(())
    }
}
