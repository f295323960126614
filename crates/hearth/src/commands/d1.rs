//! `hearth d1 execute` and `hearth d1 migrations create|list|apply`.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use hearth_d1::{D1Database, D1Error, D1Result, D1Value, migrations};

use crate::cli::{D1Command, D1MigrationsCommand};
use crate::commands::print_stdout;
use crate::progress;
use crate::project::Project;

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3";

pub fn run(command: D1Command) -> Result<()> {
    match command {
        D1Command::Execute {
            database,
            command,
            file,
            json,
            yes: _,
            project,
        } => {
            let outcome = execute_command(&database, command, file.as_deref(), &project);
            match outcome {
                Ok(results) if json => print_stdout(&serde_json::to_string_pretty(&results)?)?,
                Ok(results) => {
                    let n = results.len();
                    eprintln!(
                        "{n} command{} executed successfully.",
                        if n == 1 { "" } else { "s" }
                    );
                    print_tables(&results)?;
                }
                Err(err) => {
                    // wrangler's --json mode reports failures as JSON on stdout too,
                    // so a script parsing stdout always gets JSON.
                    if json {
                        let body = serde_json::json!({ "error": { "text": format!("{err:#}") } });
                        print_stdout(&serde_json::to_string_pretty(&body)?)?;
                    }
                    return Err(err);
                }
            }
        }
        D1Command::Migrations { command } => migrations_command(command)?,
    }
    Ok(())
}

fn execute_command(
    database: &str,
    command: Option<String>,
    file: Option<&Path>,
    project: &crate::cli::ProjectArgs,
) -> Result<Vec<D1Result>> {
    let project = Project::load(project)?;
    let binding = project.d1_binding(database)?;
    let sql = match (command, file) {
        (Some(sql), _) => sql,
        (None, Some(path)) => read_sql_file(path)?,
        (None, None) => bail!("Error: must provide --command or --file."),
    };
    let db = project.d1_database(binding)?;
    execute(&db, &sql)
}

/// Reads a `--file`, refusing a binary database file with a clear message.
fn read_sql_file(path: &Path) -> Result<String> {
    let unreadable = || {
        anyhow!(
            "Unable to read SQL text file \"{}\". Please check the file path and try again.",
            path.display()
        )
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|_| unreadable())?;
    if bytes.starts_with(SQLITE_MAGIC) {
        bail!(
            "Provided file is a binary SQLite database file instead of an SQL text file. The execute command can only process SQL text files."
        );
    }
    String::from_utf8(bytes).map_err(|_| unreadable())
}

/// Runs every statement of `sql` as one all-or-nothing batch, as
/// `wrangler d1 execute` does locally, showing progress for long scripts.
pub fn execute(db: &D1Database, sql: &str) -> Result<Vec<D1Result>> {
    let statements: Vec<_> = hearth_d1::split_statements(sql)
        .into_iter()
        .map(|s| db.prepare(s))
        .collect();
    if statements.is_empty() {
        return Err(D1Error::NoStatements.into());
    }
    let bar = progress::bar(statements.len() as u64, "statements");
    let results = db.batch(&statements).map_err(|e| match e {
        // The batch error's message is its statement's; said once, plus where.
        D1Error::Batch { index, error } => anyhow!(
            "{error}\nStatement {} of {} failed; the batch was rolled back and no statement was applied.",
            index + 1,
            statements.len()
        ),
        other => other.into(),
    });
    bar.finish_and_clear();
    results
}

fn print_tables(results: &[D1Result]) -> Result<()> {
    let mut out = Vec::new();
    for (i, result) in results.iter().enumerate() {
        if results.len() > 1 {
            out.push(format!("-- statement {}", i + 1));
        }
        let Some(first) = result.results.first() else {
            out.push(format!(
                "{} row(s) changed, {} read, {} written in {:.2} ms",
                result.meta.changes,
                result.meta.rows_read,
                result.meta.rows_written,
                result.meta.duration
            ));
            continue;
        };
        let header: Vec<&str> = first.columns().collect();
        out.push(header.join("\t"));
        for row in &result.results {
            let cells: Vec<String> = row.values().map(cell).collect();
            out.push(cells.join("\t"));
        }
    }
    print_stdout(&out.join("\n"))
}

fn cell(value: &D1Value) -> String {
    match value {
        D1Value::Null => "NULL".into(),
        D1Value::Integer(i) => i.to_string(),
        D1Value::Real(f) => f.to_string(),
        D1Value::Text(t) => t.clone(),
        D1Value::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

fn migrations_command(command: D1MigrationsCommand) -> Result<()> {
    match command {
        D1MigrationsCommand::Create {
            database,
            message,
            project,
        } => {
            let project = Project::load(&project)?;
            let binding = project.d1_binding(&database)?;
            let dir = project.config.d1_migrations_dir(binding);
            let path = migrations::create(&dir, &message, &project.clock)?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            eprintln!("Successfully created Migration '{name}'!");
            // The path alone on stdout, so `$(hearth d1 migrations create ...)` is the file.
            print_stdout(&path.display().to_string())?;
        }
        D1MigrationsCommand::List { database, project } => {
            let project = Project::load(&project)?;
            let binding = project.d1_binding(&database)?;
            let db = project.d1_database(binding)?;
            let dir = project.config.d1_migrations_dir(binding);
            let pending = migrations::list(&db, &dir, &binding.migrations_table)?;
            if pending.is_empty() {
                print_stdout("No migrations to apply!")?;
            } else {
                let mut lines = vec!["Migrations to be applied:".to_string()];
                lines.extend(pending.into_iter().map(|m| m.name));
                print_stdout(&lines.join("\n"))?;
            }
        }
        D1MigrationsCommand::Apply { database, project } => {
            let project = Project::load(&project)?;
            let binding = project.d1_binding(&database)?;
            let db = project.d1_database(binding)?;
            let dir = project.config.d1_migrations_dir(binding);
            let table = &binding.migrations_table;
            let before = migrations::list(&db, &dir, table)?;
            if before.is_empty() {
                print_stdout("No migrations to apply!")?;
                return Ok(());
            }
            match migrations::apply(&db, &dir, table, &project.clock) {
                Ok(applied) => {
                    let lines: Vec<String> = applied
                        .iter()
                        .map(|m| format!("Applied {}", m.name))
                        .collect();
                    print_stdout(&lines.join("\n"))?;
                }
                Err(err) => {
                    // Each migration commits on its own: say which ones made it.
                    let still: HashSet<String> = migrations::list(&db, &dir, table)
                        .map(|l| l.into_iter().map(|m| m.name).collect())
                        .unwrap_or_default();
                    let lines: Vec<String> = before
                        .iter()
                        .filter(|m| !still.contains(&m.name))
                        .map(|m| format!("Applied {}", m.name))
                        .collect();
                    if !lines.is_empty() {
                        print_stdout(&lines.join("\n"))?;
                    }
                    return Err(err.into());
                }
            }
        }
    }
    Ok(())
}
