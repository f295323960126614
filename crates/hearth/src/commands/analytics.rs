//! `hearth analytics sql "<query>"`: the SQL API over the data
//! directory's `analytics_engine.sqlite`, as `POST
//! /__hearth/analytics_engine/sql` answers it (a running server's points
//! are visible once its writer has committed them, within a second).

use anyhow::{Result, bail};
use hearth_runtime::bindings::open_analytics;

use crate::cli::AnalyticsCommand;
use crate::commands::events::kind_settings;
use crate::commands::print_stdout;
use crate::project::Project;

pub fn run(command: AnalyticsCommand) -> Result<()> {
    match command {
        AnalyticsCommand::Sql { project, query } => {
            let project = Project::load(&project)?;
            if project.config.analytics_engine_datasets.is_empty() {
                bail!(
                    "{}: the config declares no analytics_engine_datasets",
                    project.config.path.display()
                );
            }
            let settings = kind_settings(&project)?;
            let engine = open_analytics(
                &project.data_dir,
                project.clock.clone(),
                settings.analytics_retention_ms,
            )?;
            let out = engine.query(&query)?;
            print_stdout(out.body.trim_end_matches('\n'))
        }
    }
}
