//! Statement text checks for `sql.exec()`. Splitting the text into
//! statements is hearth-core's (`hearth_core::sql`), shared with D1.

pub(crate) use hearth_core::sql::split_statements;

/// Whether an `ALTER TABLE` statement renames something to a reserved
/// `_cf_` name. Stock SQLite does not show the new name to the authorizer,
/// so the text is checked instead.
pub(crate) fn renames_into_reserved(statement: &str) -> bool {
    let lower = statement.to_ascii_lowercase();
    let Some(at) = lower.find("rename") else {
        return false;
    };
    lower[at..]
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';' | '.'))
        .map(|w| w.trim_matches(|c| matches!(c, '"' | '\'' | '`' | '[' | ']')))
        .any(|w| w.starts_with("_cf_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_renames_into_reserved_names() {
        assert!(renames_into_reserved("ALTER TABLE t RENAME TO _cf_x"));
        assert!(renames_into_reserved("alter table t rename to \"_CF_x\""));
        assert!(!renames_into_reserved("ALTER TABLE t RENAME TO u"));
        assert!(!renames_into_reserved("ALTER TABLE t ADD COLUMN c"));
    }
}
