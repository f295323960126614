//! Ids, names and batch limits, with Cloudflare's messages.

#[macro_use]
mod common;

use common::*;
use hearth_core::{ContractError, ErrorClass};
use hearth_workflows::{CreateOptions, StepConfig, WorkflowLimits};

#[test]
fn instance_ids_follow_the_pattern_and_length() {
    let fx = fixture();
    for bad in ["", "-x", "a b", "a.b", "a:1", "ü", &"x".repeat(101)] {
        let err = fx
            .engine
            .create(WF, CreateOptions::new().id(bad))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Workflow instance has invalid id",
            "{bad:?}"
        );
        assert_eq!(err.class(), ErrorClass::Named("WorkflowError"));
    }
    let longest = format!("x{}9", "_-".repeat(49));
    assert_eq!(longest.len(), 100);
    for good in ["a", "_", "0-a_b", longest.as_str()] {
        assert_eq!(
            fx.engine.create(WF, CreateOptions::new().id(good)).unwrap(),
            good
        );
    }
}

#[test]
fn an_id_is_generated_when_none_is_given() {
    let fx = fixture();
    let a = fx.engine.create(WF, CreateOptions::new()).unwrap();
    let b = fx.engine.create(WF, CreateOptions::new()).unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36, "a UUID");
    assert!(hearth_workflows::validate::is_valid_string_id(&a, 100));
}

#[test]
fn a_duplicate_id_is_refused() {
    let fx = fixture();
    fx.create("dup", "1");
    let err = fx
        .engine
        .create(WF, CreateOptions::new().id("dup").params("2"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "(instance.already_exists) Instance already exists"
    );
    assert_eq!(fx.engine.describe(WF, "dup").unwrap().params, bytes("1"));
    // The same id under another Workflow is a different instance.
    fx.engine
        .create("other", CreateOptions::new().id("dup"))
        .unwrap();
}

#[test]
fn workflow_names_are_checked() {
    let fx = fixture();
    let err = fx
        .engine
        .create("bad name", CreateOptions::new())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Workflow name \"bad name\" is invalid: it must be at most 64 characters matching ^[a-zA-Z0-9_][a-zA-Z0-9-_]*$"
    );
    assert!(
        fx.engine
            .create(&"w".repeat(65), CreateOptions::new())
            .is_err()
    );
    fx.engine
        .create(&"w".repeat(64), CreateOptions::new())
        .unwrap();
}

#[test]
fn params_are_limited_to_one_mebibyte() {
    let fx = fixture();
    let err = fx
        .engine
        .create(WF, CreateOptions::new().params(vec![b'x'; (1 << 20) + 1]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Workflow params of 1048577 bytes exceed the limit of 1048576 bytes"
    );
    fx.engine
        .create(WF, CreateOptions::new().params(vec![b'x'; 1 << 20]))
        .unwrap();
}

#[test]
fn create_batch_limits() {
    let fx = fixture();
    let err = fx.engine.create_batch(WF, Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "WorkflowError: batchCreate should have at least 1 instance"
    );
    let too_many: Vec<_> = (0..101)
        .map(|i| CreateOptions::new().id(format!("b{i}")))
        .collect();
    let err = fx.engine.create_batch(WF, too_many).unwrap_err();
    assert_eq!(
        err.to_string(),
        "WorkflowError: batchCreate only supports 100 instances at a time"
    );
    assert!(
        fx.engine
            .list(WF, &Default::default())
            .unwrap()
            .instances
            .is_empty()
    );

    let hundred: Vec<_> = (0..100)
        .map(|i| CreateOptions::new().id(format!("b{i}")))
        .collect();
    assert_eq!(fx.engine.create_batch(WF, hundred).unwrap().len(), 100);
}

#[test]
fn create_batch_skips_existing_ids_and_checks_everything_first() {
    let fx = fixture();
    fx.create("old", "");
    let created = fx
        .engine
        .create_batch(
            WF,
            vec![
                CreateOptions::new().id("new1"),
                CreateOptions::new().id("old"),
                CreateOptions::new().id("new1"),
                CreateOptions::new(),
            ],
        )
        .unwrap();
    assert_eq!(created.len(), 2);
    assert_eq!(created[0], "new1");
    // One invalid entry: nothing is created.
    let err = fx
        .engine
        .create_batch(
            WF,
            vec![
                CreateOptions::new().id("fine"),
                CreateOptions::new().id("not fine"),
            ],
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "Workflow instance has invalid id");
    assert!(fx.engine.get(WF, "fine").is_err());
}

#[test]
fn the_batch_limit_can_be_raised() {
    let fx = fixture_with(WorkflowLimits {
        max_batch_size: 200,
        ..Default::default()
    });
    let batch: Vec<_> = (0..150).map(|_| CreateOptions::new()).collect();
    assert_eq!(fx.engine.create_batch(WF, batch).unwrap().len(), 150);
}

#[test]
fn step_names_are_limited_and_free_of_control_characters() {
    let fx = fixture();
    fx.create("s", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let cfg = StepConfig::default();
    let long = "n".repeat(257);
    for bad in [long.as_str(), "tab\there", "nul\0"] {
        let err = fx.engine.step_begin(&mut t, bad, &cfg).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Step name \"{bad}\" exceeds max length (256 chars) or invalid characters found"
            )
        );
        assert_eq!(err.class(), ErrorClass::Named("WorkflowFatalError"));
        assert!(fx.engine.sleep(&mut t, bad, 1).is_err());
    }
    // 256 characters, spaces and any Unicode are fine.
    fx.engine
        .step_begin(&mut t, &"n".repeat(256), &cfg)
        .unwrap();
    fx.engine
        .step_begin(&mut t, "send the e-mail ✉", &cfg)
        .unwrap();
}

#[test]
fn a_zero_timeout_is_an_invalid_step_config() {
    let fx = fixture();
    fx.create("c", "");
    let mut t = fx.engine.claim_due().unwrap().pop().unwrap();
    let err = fx
        .engine
        .step_begin(&mut t, "s", &StepConfig::default().timeout_ms(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Step config for \"s\" is in a invalid format. See https://developers.cloudflare.com/workflows/build/sleeping-and-retrying/"
    );
}

#[test]
fn step_output_is_limited_to_one_mebibyte() {
    let fx = fixture();
    fx.create("big", "");
    let run = |_: &str,
               _: &hearth_workflows::WorkflowEvent,
               step: &mut hearth_workflows::native::WorkflowStep<'_>| {
        step.do_default("huge", |_| Ok(vec![0; (1 << 20) + 1]))
    };
    let out = fx.tick(run);
    assert_eq!(
        out,
        vec![hearth_workflows::native::RunOutcome::Errored(
            hearth_workflows::ErrorInfo::new(
                "WorkflowFatalError",
                "Step \"huge\" returned 1048577 bytes, more than the limit of 1048576 bytes per step"
            )
        )]
    );
    let step = &fx.engine.describe(WF, "big").unwrap().steps[0];
    assert_eq!(step.attempts.len(), 1, "not retried");
}

on_postgres!(
    instance_ids_follow_the_pattern_and_length,
    an_id_is_generated_when_none_is_given,
    a_duplicate_id_is_refused,
    workflow_names_are_checked,
    params_are_limited_to_one_mebibyte,
    create_batch_limits,
    create_batch_skips_existing_ids_and_checks_everything_first,
    the_batch_limit_can_be_raised,
    step_names_are_limited_and_free_of_control_characters,
    a_zero_timeout_is_an_invalid_step_config,
    step_output_is_limited_to_one_mebibyte,
);
