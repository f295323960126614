//! D1's limits and input rules, checked before SQLite sees the query, plus
//! the statement policy (what SQL the binding refuses) and the bookmark shape.

use std::time::Duration;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::D1Value;
use crate::error::D1Error;

/// Bound parameters per query.
pub const MAX_BOUND_PARAMETERS: usize = 100;
/// Bytes in one SQL statement (each statement of a batch counts alone).
pub const MAX_SQL_STATEMENT_BYTES: usize = 100_000;
/// Bytes in one string, BLOB or table row.
pub const MAX_VALUE_BYTES: usize = 2_000_000;
/// Columns in one table.
pub const MAX_COLUMNS_PER_TABLE: usize = 100;
/// Wall time of one query or one whole batch.
pub const MAX_QUERY_DURATION: Duration = Duration::from_secs(30);
/// Size of one database file (10 GB, the Workers Paid figure).
pub const MAX_DATABASE_BYTES: u64 = 10_000_000_000;
/// Arguments to one SQL function call.
pub const MAX_FUNCTION_ARGS: usize = 32;
/// Bytes in a `LIKE` or `GLOB` pattern.
pub const MAX_LIKE_PATTERN_BYTES: usize = 50;

/// D1's limits. `Default` gives Cloudflare's values; raise any of them for
/// workloads that need more. Values above SQLite's compiled-in ceilings
/// (e.g. 32766 variables, 2000 columns) are capped there by SQLite.
/// `max_value_bytes` is exact for bound values; for rows and computed values
/// SQLite also counts the record header, so it allows up to 0.1% (at most
/// 1 KiB) more there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct D1Limits {
    pub max_bound_parameters: usize,
    pub max_sql_statement_bytes: usize,
    pub max_value_bytes: usize,
    pub max_columns_per_table: usize,
    pub max_query_duration: Duration,
    pub max_database_bytes: u64,
    pub max_function_args: usize,
    pub max_like_pattern_bytes: usize,
}

impl Default for D1Limits {
    fn default() -> Self {
        Self {
            max_bound_parameters: MAX_BOUND_PARAMETERS,
            max_sql_statement_bytes: MAX_SQL_STATEMENT_BYTES,
            max_value_bytes: MAX_VALUE_BYTES,
            max_columns_per_table: MAX_COLUMNS_PER_TABLE,
            max_query_duration: MAX_QUERY_DURATION,
            max_database_bytes: MAX_DATABASE_BYTES,
            max_function_args: MAX_FUNCTION_ARGS,
            max_like_pattern_bytes: MAX_LIKE_PATTERN_BYTES,
        }
    }
}

/// Checks one query's SQL text and bound values against the limits.
pub(crate) fn check_query(limits: &D1Limits, sql: &str, params: &[D1Value]) -> Result<(), D1Error> {
    if sql.len() > limits.max_sql_statement_bytes {
        return Err(D1Error::StatementTooLong {
            len: sql.len(),
            limit: limits.max_sql_statement_bytes,
        });
    }
    if params.len() > limits.max_bound_parameters {
        return Err(D1Error::TooManyParameters {
            got: params.len(),
            limit: limits.max_bound_parameters,
        });
    }
    for (i, value) in params.iter().enumerate() {
        let len = match value {
            D1Value::Text(s) => s.len(),
            D1Value::Blob(b) => b.len(),
            _ => 0,
        };
        if len > limits.max_value_bytes {
            return Err(D1Error::ValueTooLarge {
                index: i + 1,
                len,
                limit: limits.max_value_bytes,
            });
        }
    }
    Ok(())
}

/// Session start: the first query may go to the primary or anywhere, or
/// must see at least the state a bookmark names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionConstraint {
    FirstPrimary,
    FirstUnconstrained,
    Bookmark(String),
}

pub const FIRST_PRIMARY: &str = "first-primary";
pub const FIRST_UNCONSTRAINED: &str = "first-unconstrained";

impl SessionConstraint {
    /// Parses what `withSession()` accepts: nothing or blank means
    /// `first-unconstrained`; otherwise a constraint or a bookmark.
    pub fn parse(input: Option<&str>) -> Result<Self, D1Error> {
        let value = input.map(str::trim).unwrap_or("");
        match value {
            "" | FIRST_UNCONSTRAINED => Ok(Self::FirstUnconstrained),
            FIRST_PRIMARY => Ok(Self::FirstPrimary),
            other if is_bookmark(other) => Ok(Self::Bookmark(other.to_owned())),
            other => Err(D1Error::InvalidBookmark(other.to_owned())),
        }
    }
}

/// D1 bookmarks look like `00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683`:
/// three 8-digit and one 32-digit lowercase hex groups, sortable as text.
pub fn is_bookmark(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 8, 8, 32];
    groups.len() == lens.len()
        && groups.iter().zip(lens).all(|(g, n)| {
            g.len() == n
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Why the statement policy refused something; SQLite itself only reports
/// "not authorized", so the reason is kept to give D1's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denial {
    Transaction,
    Other,
}

/// Names starting `_cf_` belong to the platform (D1 keeps its own state there).
pub(crate) fn is_allowed_name(name: &str) -> bool {
    !(name.len() >= 4 && name.as_bytes()[..4].eq_ignore_ascii_case(b"_cf_"))
}

/// Pragmas a D1 binding may run, and what argument each accepts.
#[derive(Clone, Copy)]
enum PragmaArg {
    None,
    Boolean,
    ObjectName,
    OptionalObjectName,
    OptionalNumber,
    OptionalNumberOrObjectName,
}

const ALLOWED_PRAGMAS: &[(&str, PragmaArg)] = &[
    ("data_version", PragmaArg::None),
    ("page_size", PragmaArg::None),
    ("table_list", PragmaArg::OptionalObjectName),
    ("table_info", PragmaArg::ObjectName),
    ("table_xinfo", PragmaArg::ObjectName),
    ("case_sensitive_like", PragmaArg::Boolean),
    ("foreign_keys", PragmaArg::Boolean),
    ("defer_foreign_keys", PragmaArg::Boolean),
    ("ignore_check_constraints", PragmaArg::Boolean),
    ("legacy_alter_table", PragmaArg::Boolean),
    ("recursive_triggers", PragmaArg::Boolean),
    ("reverse_unordered_selects", PragmaArg::Boolean),
    ("foreign_key_check", PragmaArg::OptionalObjectName),
    ("foreign_key_list", PragmaArg::ObjectName),
    ("index_info", PragmaArg::ObjectName),
    ("index_list", PragmaArg::ObjectName),
    ("index_xinfo", PragmaArg::ObjectName),
    ("quick_check", PragmaArg::OptionalNumberOrObjectName),
    ("optimize", PragmaArg::OptionalNumber),
];

fn pragma_allowed(name: &str, value: Option<&str>) -> bool {
    let Some((_, arg)) = ALLOWED_PRAGMAS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    else {
        return false;
    };
    match (arg, value) {
        (PragmaArg::None, v) => v.is_none(),
        (PragmaArg::Boolean, None) => true,
        (PragmaArg::Boolean, Some(v)) => {
            let v = v
                .trim_matches(|c| c == '\'' || c == '"')
                .to_ascii_lowercase();
            matches!(
                v.as_str(),
                "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0"
            )
        }
        (PragmaArg::ObjectName, Some(v)) => is_allowed_name(v),
        (PragmaArg::ObjectName, None) => false,
        (PragmaArg::OptionalObjectName, v) => v.is_none_or(is_allowed_name),
        (PragmaArg::OptionalNumber, v) => v.is_none_or(|v| v.trim().parse::<i32>().is_ok()),
        (PragmaArg::OptionalNumberOrObjectName, v) => {
            v.is_none_or(|v| v.trim().parse::<u32>().is_ok() || is_allowed_name(v))
        }
    }
}

/// SQL functions D1 refuses: they describe the build, not the data.
const DENIED_FUNCTIONS: &[&str] = &["sqlite_compileoption_used", "sqlite_compileoption_get"];

const ALLOWED_VTABLE_MODULES: &[&str] = &["fts5", "fts5vocab", "rtree", "rtree_i32"];

/// The statement policy D1 applies to SQL from the binding: no transaction
/// control, no ATTACH, no temporary objects, only listed pragmas and
/// virtual-table modules, and no access to `_cf_` objects.
pub(crate) fn authorize(ctx: &AuthContext<'_>) -> Result<(), Denial> {
    match ctx.database_name {
        Some("main") | None => {}
        Some("temp") => {
            // The temp schema only ever backs SQLite's own work.
            return match ctx.action {
                AuthAction::Read { table_name, .. } | AuthAction::Update { table_name, .. }
                    if is_allowed_name(table_name) =>
                {
                    Ok(())
                }
                _ => Err(Denial::Other),
            };
        }
        Some(_) => return Err(Denial::Other),
    }
    let ok = |allowed: bool| if allowed { Ok(()) } else { Err(Denial::Other) };
    match ctx.action {
        AuthAction::Select | AuthAction::Recursive | AuthAction::Analyze { .. } => Ok(()),
        AuthAction::Function { function_name } => ok(!DENIED_FUNCTIONS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(function_name))),
        AuthAction::CreateTable { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Read { table_name, .. }
        | AuthAction::Update { table_name, .. }
        | AuthAction::AlterTable { table_name, .. } => ok(is_allowed_name(table_name)),
        AuthAction::CreateView { view_name } | AuthAction::DropView { view_name } => {
            ok(is_allowed_name(view_name))
        }
        AuthAction::Reindex { index_name } => ok(is_allowed_name(index_name)),
        AuthAction::CreateIndex {
            index_name,
            table_name,
        }
        | AuthAction::DropIndex {
            index_name,
            table_name,
        } => ok(is_allowed_name(index_name) && is_allowed_name(table_name)),
        AuthAction::CreateTrigger {
            trigger_name,
            table_name,
        }
        | AuthAction::DropTrigger {
            trigger_name,
            table_name,
        } => ok(is_allowed_name(trigger_name) && is_allowed_name(table_name)),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Err(Denial::Transaction),
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => ok(pragma_allowed(pragma_name, pragma_value)),
        AuthAction::CreateVtable {
            table_name,
            module_name,
        }
        | AuthAction::DropVtable {
            table_name,
            module_name,
        } => ok(ALLOWED_VTABLE_MODULES
            .iter()
            .any(|m| m.eq_ignore_ascii_case(module_name))
            && is_allowed_name(table_name)),
        // ATTACH/DETACH, temporary objects and anything unknown.
        _ => Err(Denial::Other),
    }
}

/// Maps a policy answer to SQLite's.
pub(crate) fn to_authorization(r: Result<(), Denial>) -> Authorization {
    match r {
        Ok(()) => Authorization::Allow,
        Err(_) => Authorization::Deny,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmark_shape() {
        assert!(is_bookmark(
            "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683"
        ));
        assert!(!is_bookmark(
            "00000085-0000024C-00004c6d-8e61117bf38d7adb71b934ebbf891683"
        ));
        assert!(!is_bookmark("00000085-0000024c-00004c6d"));
        assert!(!is_bookmark("first-primaryx"));
    }

    #[test]
    fn cf_names_are_reserved() {
        assert!(!is_allowed_name("_cf_KV"));
        assert!(!is_allowed_name("_CF_anything"));
        assert!(is_allowed_name("_cf"));
        assert!(is_allowed_name("users"));
    }

    #[test]
    fn pragma_arguments() {
        assert!(pragma_allowed("foreign_keys", Some("OFF")));
        assert!(pragma_allowed("foreign_keys", None));
        assert!(!pragma_allowed("foreign_keys", Some("2")));
        assert!(pragma_allowed("table_info", Some("users")));
        assert!(!pragma_allowed("table_info", Some("_cf_KV")));
        assert!(!pragma_allowed("page_size", Some("8192")));
        assert!(!pragma_allowed("journal_mode", Some("delete")));
        assert!(!pragma_allowed("optimize", Some("0x10002")));
        assert!(pragma_allowed("optimize", Some("2")));
    }
}
