//! `hearth vectorize ...`: wrangler's Vectorize commands over the data
//! directory's indexes. A running server sees what these commands write at
//! its next call on the index (it reads what another process committed).

use std::io::BufRead;

use anyhow::{Context, Result, bail};
use hearth_core::calendar::UtcDateTime;
use hearth_vectorize::{
    IndexConfig, IndexInfo, IndexType, MetadataIndex, Metric, NewVector, QueryOptions,
    ReturnMetadata, VectorIndex, WriteMode,
};
use serde_json::{Value, json};

use crate::cli::VectorizeCommand;
use crate::commands::print_stdout;
use crate::project::Project;

fn info_json(info: &IndexInfo) -> Value {
    json!({
        "name": info.name,
        "description": info.config.description,
        "config": { "dimensions": info.config.dimensions, "metric": info.config.metric.as_str() },
        "created_on": UtcDateTime::from_unix_ms(info.created_ms as i64).iso(),
    })
}

fn print_json(v: &Value) -> Result<()> {
    print_stdout(&serde_json::to_string_pretty(v)?)
}

fn open(project: &crate::cli::ProjectArgs, name: &str) -> Result<(Project, VectorIndex)> {
    let project = Project::load(project)?;
    let index = hearth_vectorize::open_index(&project.data_dir, name, project.clock.clone())?;
    Ok((project, index))
}

/// `--vector 1 2 3`, `--vector 1,2,3` or `--vector "[1, 2, 3]"`.
fn parse_vector(parts: &[String]) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for part in parts {
        for piece in part
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split([',', ' '])
            .filter(|p| !p.trim().is_empty())
        {
            out.push(
                piece
                    .trim()
                    .parse::<f64>()
                    .with_context(|| format!("--vector: \"{piece}\" is not a number"))?,
            );
        }
    }
    Ok(out)
}

/// One NDJSON line as a vector.
fn vector_of_line(line: &str, at: usize) -> Result<NewVector> {
    let v: Value = serde_json::from_str(line).with_context(|| format!("line {at}: not JSON"))?;
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .with_context(|| format!("line {at}: \"id\" must be a string"))?;
    let values = v
        .get("values")
        .and_then(Value::as_array)
        .with_context(|| format!("line {at}: \"values\" must be an array of numbers"))?
        .iter()
        .map(|x| {
            x.as_f64()
                .with_context(|| format!("line {at}: \"values\" must be an array of numbers"))
        })
        .collect::<Result<Vec<f64>>>()?;
    let namespace = match v.get("namespace") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => bail!("line {at}: \"namespace\" must be a string"),
    };
    let metadata = match v.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => bail!("line {at}: \"metadata\" must be an object"),
    };
    Ok(NewVector {
        id: id.to_owned(),
        values,
        namespace,
        metadata,
    })
}

pub fn run(command: VectorizeCommand) -> Result<()> {
    match command {
        VectorizeCommand::Create {
            project,
            name,
            dimensions,
            metric,
            description,
        } => {
            let project = Project::load(&project)?;
            let metric: Metric = metric.parse().map_err(anyhow::Error::msg)?;
            let config = IndexConfig {
                dimensions,
                metric,
                description,
            };
            let index = hearth_vectorize::create_index(
                &project.data_dir,
                &name,
                &config,
                project.clock.clone(),
            )?;
            eprintln!("Created Vectorize index \"{name}\" ({dimensions} dimensions, {metric}).");
            print_json(&info_json(&index.info()))
        }
        VectorizeCommand::List { project } => {
            let project = Project::load(&project)?;
            let all = hearth_vectorize::list_indexes(&project.data_dir, project.clock.clone())?;
            let rows: Vec<Value> = all
                .iter()
                .map(|i| {
                    let mut v = info_json(i);
                    v["vectorCount"] = json!(i.vector_count);
                    v
                })
                .collect();
            print_json(&Value::Array(rows))
        }
        VectorizeCommand::Get { project, name } => {
            let (_, index) = open(&project, &name)?;
            print_json(&info_json(&index.info()))
        }
        VectorizeCommand::Delete { project, name, .. } => {
            let project = Project::load(&project)?;
            hearth_vectorize::delete_index(&project.data_dir, &name)?;
            eprintln!("Deleted Vectorize index \"{name}\".");
            Ok(())
        }
        VectorizeCommand::Info { project, name } => {
            let (_, index) = open(&project, &name)?;
            let info = index.info();
            print_json(&json!({
                "dimensions": info.config.dimensions,
                "vectorCount": info.vector_count,
                "processedUpToMutation": info.processed_up_to_mutation,
                "processedUpToDatetime": info.processed_up_to_ms.map(|ms| UtcDateTime::from_unix_ms(ms as i64).iso()),
            }))
        }
        VectorizeCommand::Insert {
            project,
            name,
            file,
            batch_size,
            upsert,
        } => {
            let (_, index) = open(&project, &name)?;
            let max = index.limits().max_batch_http;
            if batch_size == 0 || batch_size > max {
                bail!("--batch-size must be from 1 to {max}");
            }
            let mode = if upsert {
                WriteMode::Upsert
            } else {
                WriteMode::Insert
            };
            let reader = std::io::BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?,
            );
            let mut batch = Vec::with_capacity(batch_size);
            let (mut written, mut lines) = (0usize, 0usize);
            let mut flush = |batch: &mut Vec<NewVector>| -> Result<()> {
                if !batch.is_empty() {
                    written += index.write_vectors(mode, batch, max)?.ids.len();
                    batch.clear();
                }
                Ok(())
            };
            for (i, line) in reader.lines().enumerate() {
                let line = line.with_context(|| format!("reading {}", file.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                lines += 1;
                batch.push(vector_of_line(&line, i + 1)?);
                if batch.len() >= batch_size {
                    flush(&mut batch)?;
                }
            }
            flush(&mut batch)?;
            print_json(&json!({ "read": lines, "written": written }))
        }
        VectorizeCommand::Query {
            project,
            name,
            vector,
            vector_id,
            top_k,
            return_values,
            return_metadata,
            namespace,
            filter,
        } => {
            let (_, index) = open(&project, &name)?;
            let values = match (vector.is_empty(), vector_id) {
                (false, None) => parse_vector(&vector)?,
                (true, Some(id)) => match index.vector_of(&id)? {
                    Some(v) => v,
                    None => bail!("no vector with id \"{id}\" in index \"{name}\""),
                },
                _ => bail!("give either --vector or --vector-id"),
            };
            let return_metadata = match return_metadata.as_str() {
                "none" => ReturnMetadata::None,
                "indexed" => ReturnMetadata::Indexed,
                "all" => ReturnMetadata::All,
                other => bail!("--return-metadata \"{other}\": expected none, indexed or all"),
            };
            let filter = match filter {
                Some(f) => Some(serde_json::from_str(&f).context("--filter is not JSON")?),
                None => None,
            };
            let options = QueryOptions {
                top_k,
                namespace,
                return_values,
                return_metadata,
                filter,
            };
            let matches = index.query(&values, &options)?;
            let rows: Vec<Value> = matches
                .into_iter()
                .map(|m| {
                    let mut v = json!({ "id": m.id, "score": m.score });
                    if let Some(values) = m.values {
                        v["values"] = json!(values);
                    }
                    if let Some(metadata) = m.metadata {
                        v["metadata"] = metadata;
                    }
                    if let Some(ns) = m.namespace {
                        v["namespace"] = json!(ns);
                    }
                    v
                })
                .collect();
            print_json(&json!({ "count": rows.len(), "matches": rows }))
        }
        VectorizeCommand::CreateMetadataIndex {
            project,
            name,
            property_name,
            index_type,
        } => {
            let (_, index) = open(&project, &name)?;
            let index_type: IndexType = index_type.parse().map_err(anyhow::Error::msg)?;
            index.create_metadata_index(&MetadataIndex {
                property_name: property_name.clone(),
                index_type,
            })?;
            eprintln!("Created metadata index on \"{property_name}\" ({index_type}).");
            Ok(())
        }
        VectorizeCommand::ListMetadataIndex { project, name } => {
            let (_, index) = open(&project, &name)?;
            let rows: Vec<Value> = index
                .metadata_indexes()?
                .iter()
                .map(|ix| json!({ "propertyName": ix.property_name, "indexType": ix.index_type.as_str() }))
                .collect();
            print_json(&json!({ "metadataIndexes": rows }))
        }
        VectorizeCommand::DeleteMetadataIndex {
            project,
            name,
            property_name,
        } => {
            let (_, index) = open(&project, &name)?;
            index.delete_metadata_index(&property_name)?;
            eprintln!("Deleted metadata index on \"{property_name}\".");
            Ok(())
        }
        VectorizeCommand::GetVectors { project, name, ids } => {
            let (_, index) = open(&project, &name)?;
            let rows: Vec<Value> = index
                .get_by_ids(&ids)?
                .into_iter()
                .map(|v| {
                    json!({ "id": v.id, "values": v.values, "namespace": v.namespace, "metadata": v.metadata })
                })
                .collect();
            print_json(&Value::Array(rows))
        }
        VectorizeCommand::DeleteVectors { project, name, ids } => {
            let (_, index) = open(&project, &name)?;
            let m = index.delete_by_ids(&ids)?;
            print_json(&json!({ "mutationId": m.mutation_id, "count": m.ids.len(), "ids": m.ids }))
        }
        VectorizeCommand::ListVectors {
            project,
            name,
            count,
            cursor,
        } => {
            let (_, index) = open(&project, &name)?;
            let page = index.list(count, cursor.as_deref())?;
            print_json(&json!({
                "count": page.ids.len(),
                "totalCount": page.total_count,
                "isTruncated": page.next_cursor.is_some(),
                "nextCursor": page.next_cursor,
                "vectors": page.ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>(),
            }))
        }
    }
}
