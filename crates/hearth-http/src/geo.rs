//! `request.cf`'s place fields from a MaxMind-format database (GeoLite2 /
//! GeoIP2 City or Country, and an ASN database), looked up by the client's
//! address. Without a database those fields stay absent: a geo check in a
//! worker must fail closed, never pass on a made-up country.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a GeoIP database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("GeoIP database {path}: {source}")]
pub struct GeoIpError {
    path: PathBuf,
    #[source]
    source: maxminddb::MaxMindDbError,
}

/// One or more MaxMind-format databases, consulted in order; a field the
/// first one answers is not overwritten by a later one.
pub struct GeoIp {
    readers: Vec<maxminddb::Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("databases", &self.readers.len())
            .finish()
    }
}

/// Countries of the European Union, for `cf.isEUCountry`.
const EU_COUNTRIES: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Named<'a>>,
    #[serde(borrow, default)]
    continent: Option<Continent<'a>>,
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
    #[serde(borrow, default)]
    subdivisions: Option<Vec<Named<'a>>>,
    #[serde(borrow, default)]
    postal: Option<Postal<'a>>,
    #[serde(borrow, default)]
    location: Option<Location<'a>>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Option<std::collections::BTreeMap<&'a str, &'a str>>,
}

impl Named<'_> {
    fn english(&self) -> Option<&str> {
        self.names.as_ref()?.get("en").copied()
    }
}

#[derive(Deserialize)]
struct Continent<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Postal<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location<'a> {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(borrow, default)]
    time_zone: Option<&'a str>,
}

impl GeoIp {
    /// Opens every database named; the files are read into memory once.
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<Self, GeoIpError> {
        let mut readers = Vec::with_capacity(paths.len());
        for path in paths {
            let path = path.as_ref();
            let reader = maxminddb::Reader::open_readfile(path).map_err(|source| GeoIpError {
                path: path.to_path_buf(),
                source,
            })?;
            readers.push(reader);
        }
        Ok(GeoIp { readers })
    }

    /// Adds to `cf` the fields Cloudflare derives from the client's address
    /// (`country`, `continent`, `isEUCountry`, `city`, `region`,
    /// `regionCode`, `postalCode`, `latitude`, `longitude`, `timezone`,
    /// `asn`, `asOrganization`), as far as the databases know them.
    pub fn fill(&self, ip: IpAddr, cf: &mut Map<String, Value>) {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        for reader in &self.readers {
            // An IPv6 client against an IPv4-only database, or a damaged
            // record: nothing is known, so nothing is added.
            let Ok(found) = reader.lookup(ip) else {
                continue;
            };
            let Ok(Some(r)) = found.decode::<Record>() else {
                continue;
            };
            add_record(&r, cf);
        }
    }
}

/// `request.cf` for a request from `ip`, as JSON text: what the connection
/// tells (`httpProtocol`, `clientAcceptEncoding`) and, with databases, where
/// the client is. TLS fields are absent because Hearth serves plain HTTP.
/// `None` when that is exactly what the runtime builds by itself (HTTP/1.1,
/// no databases), which keeps JSON off the hot path.
pub(crate) fn request_cf(
    version: http::Version,
    headers: &http::HeaderMap,
    ip: IpAddr,
    geo: Option<&GeoIp>,
) -> Option<String> {
    if geo.is_none() && version == http::Version::HTTP_11 {
        return None;
    }
    let mut cf = Map::new();
    let protocol = match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    };
    cf.insert("httpProtocol".into(), Value::String(protocol.into()));
    if let Some(v) = headers.get(http::header::ACCEPT_ENCODING) {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        cf.insert("clientAcceptEncoding".into(), Value::String(v));
    }
    if let Some(geo) = geo {
        geo.fill(ip, &mut cf);
    }
    Some(Value::Object(cf).to_string())
}

fn add_record(r: &Record<'_>, cf: &mut Map<String, Value>) {
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value
            && !cf.contains_key(key)
        {
            cf.insert(key.to_owned(), v);
        }
    };
    let text = |s: Option<&str>| s.map(|s| Value::String(s.to_owned()));
    let country = r.country.as_ref().and_then(|c| c.iso_code);
    put("country", text(country));
    if let Some(code) = country {
        let eu = EU_COUNTRIES.contains(&code);
        put("isEUCountry", eu.then(|| Value::String("1".into())));
    }
    put("continent", text(r.continent.as_ref().and_then(|c| c.code)));
    put("city", text(r.city.as_ref().and_then(Named::english)));
    let region = r.subdivisions.as_ref().and_then(|s| s.first());
    put("region", text(region.and_then(Named::english)));
    put("regionCode", text(region.and_then(|s| s.iso_code)));
    put("postalCode", text(r.postal.as_ref().and_then(|p| p.code)));
    // Cloudflare gives coordinates as strings.
    let location = r.location.as_ref();
    put(
        "latitude",
        location
            .and_then(|l| l.latitude)
            .map(|v| Value::String(v.to_string())),
    );
    put(
        "longitude",
        location
            .and_then(|l| l.longitude)
            .map(|v| Value::String(v.to_string())),
    );
    put("timezone", text(location.and_then(|l| l.time_zone)));
    put("asn", r.autonomous_system_number.map(Value::from));
    put("asOrganization", text(r.autonomous_system_organization));
}
