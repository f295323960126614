//! Progress for long operations, shown only when stderr is a terminal so that
//! scripts and tests see clean output.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting items (`unit` = "keys") or bytes (`unit` = "bytes").
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = if unit == "bytes" {
        "{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
    } else {
        "{bar:40} {pos}/{len} {msg} ({per_sec}, {eta})"
    };
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(unit.to_string());
    bar
}

/// A spinner for one long step whose progress cannot be counted.
pub fn spinner(message: String) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(message);
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    spinner
}
