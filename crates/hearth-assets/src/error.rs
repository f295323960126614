//! Errors of the asset server. The limit messages are wrangler's, which
//! refuses such a directory at deploy time.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("The directory specified by the \"assets.directory\" field in your configuration file does not exist:\n{}", .0.display())]
    MissingDirectory(PathBuf),

    #[error(
        "Maximum number of assets exceeded.\nCloudflare Workers supports up to {} assets in a version. We found {} files in the specified assets directory \"{}\".\nEnsure your assets directory contains a maximum of {} files, and that you have specified your assets directory correctly. (limits.max_asset_count)",
        thousands(*.limit), thousands(*.found), .dir.display(), thousands(*.limit)
    )]
    TooManyAssets {
        dir: PathBuf,
        found: u64,
        limit: u64,
    },

    #[error(
        "Asset too large.\nCloudflare Workers supports assets with sizes of up to {}. We found a file {} with a size of {}.\nEnsure all assets in your assets directory \"{}\" conform with the Workers maximum size requirement. (limits.max_asset_bytes)",
        pretty_bytes(*.limit), .path.display(), pretty_bytes(*.size), .dir.display()
    )]
    AssetTooLarge {
        dir: PathBuf,
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    #[error("reading the assets directory: {op} {}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl AssetError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AssetError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// `20000` → `20,000`, as wrangler prints counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Binary units with up to one decimal, as wrangler prints sizes (`25 MiB`,
/// `31.5 MiB`).
pub(crate) fn pretty_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n} B");
    }
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{} {}", rounded as u64, UNITS[unit])
    } else {
        format!("{rounded:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_wrangler() {
        assert_eq!(thousands(20_000), "20,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(pretty_bytes(25 * 1024 * 1024), "25 MiB");
        assert_eq!(pretty_bytes(33_027_261), "31.5 MiB");
        assert_eq!(pretty_bytes(12), "12 B");
    }
}
