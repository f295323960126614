//! `hearth d1 execute` and `hearth d1 migrations create|list|apply`.

use anyhow::{Context, Result};
use hearth_d1::{D1Result, D1Value, migrations};

use crate::cli::{D1Command, D1MigrationsCommand};
use crate::progress;
use crate::project::Project;

pub fn run(command: D1Command) -> Result<()> {
    match command {
        D1Command::Execute {
            database,
            command,
            file,
            json,
            project,
        } => {
            let project = Project::load(&project)?;
            let binding = project.d1_binding(&database)?;
            let db = project.d1_database(binding)?;
            let sql = match (command, file) {
                (Some(sql), _) => sql,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
                (None, None) => anyhow::bail!("give --command SQL or --file F"),
            };
            let results = execute(&db, &sql)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                print_tables(&results);
            }
        }
        D1Command::Migrations { command } => migrations_command(command)?,
    }
    Ok(())
}

/// Runs every statement of `sql` as one all-or-nothing batch, as
/// `wrangler d1 execute` does for a file, showing progress for long scripts.
pub fn execute(db: &hearth_d1::D1Database, sql: &str) -> Result<Vec<D1Result>> {
    let statements: Vec<_> = hearth_d1::split_statements(sql)
        .into_iter()
        .map(|s| db.prepare(s))
        .collect();
    let bar = progress::bar(statements.len() as u64, "statements");
    let results = db.batch(&statements)?;
    bar.finish_and_clear();
    Ok(results)
}

fn print_tables(results: &[D1Result]) {
    for (i, result) in results.iter().enumerate() {
        if results.len() > 1 {
            println!("-- statement {}", i + 1);
        }
        let Some(first) = result.results.first() else {
            println!(
                "{} row(s) changed, {} read, {} written in {:.2} ms",
                result.meta.changes,
                result.meta.rows_read,
                result.meta.rows_written,
                result.meta.duration
            );
            continue;
        };
        let header: Vec<&str> = first.columns().collect();
        println!("{}", header.join("\t"));
        for row in &result.results {
            let cells: Vec<String> = row.values().map(cell).collect();
            println!("{}", cells.join("\t"));
        }
    }
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
            println!("{}", path.display());
        }
        D1MigrationsCommand::List { database, project } => {
            let project = Project::load(&project)?;
            let binding = project.d1_binding(&database)?;
            let db = project.d1_database(binding)?;
            let dir = project.config.d1_migrations_dir(binding);
            let pending = migrations::list(&db, &dir, &binding.migrations_table)?;
            if pending.is_empty() {
                println!("No migrations to apply.");
            }
            for m in pending {
                println!("{}", m.name);
            }
        }
        D1MigrationsCommand::Apply { database, project } => {
            let project = Project::load(&project)?;
            let binding = project.d1_binding(&database)?;
            let db = project.d1_database(binding)?;
            let dir = project.config.d1_migrations_dir(binding);
            let applied = migrations::apply(&db, &dir, &binding.migrations_table, &project.clock)?;
            if applied.is_empty() {
                println!("No migrations to apply.");
            }
            for m in applied {
                println!("applied {}", m.name);
            }
        }
    }
    Ok(())
}
