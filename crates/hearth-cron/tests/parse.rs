//! What `CronExpr::parse` accepts and the exact text of what it refuses.

mod common;

use common::{cron, parse_err};
use hearth_cron::{CronError, CronExpr, CronField};

#[test]
fn accepts_every_example_in_cloudflares_docs() {
    for text in [
        "* * * * *",
        "*/30 * * * *",
        "*/3 * * * *",
        "45 * * * *",
        "0 17 * * sun",
        "0 17 * * 1",
        "10 7 * * mon-fri",
        "10 7 * * 2-6",
        "0 15 1 * *",
        "0 18 * * 6L",
        "0 18 * * friL",
        "59 23 LW * *",
    ] {
        let c = cron(text);
        assert_eq!(c.as_str(), text);
        assert_eq!(c.to_string(), text);
        assert!(c.is_satisfiable(), "{text}");
    }
}

#[test]
fn accepts_the_rest_of_the_syntax() {
    for text in [
        "0 10 * * MON#2",
        "0 10 * * 2#5",
        "0 0 L * *",
        "0 0 L-3 * *",
        "0 0 L-3W * *",
        "0 0 15W * *",
        "0 0 * * L",
        "1-30/5 * * * *",
        "5/15 * * * *",
        "*/15,7 * * * *",
        "50-10 * * * *",
        "0 22-2 * * *",
        "0 0 * jan-jun/2 *",
        "0 0 * Aug,DEC *",
        "0 0 * * FRI-MON",
        "0 0 * * */2",
        "05 09 01 01 *",
        "0 0 1,15 * MON",
    ] {
        cron(text);
    }
}

#[test]
fn fields_are_separated_by_any_run_of_spaces_or_tabs() {
    let c = cron("  0\t0   * * *  ");
    assert!(c.same_schedule(&cron("0 0 * * *")));
    // controller.cron reports the string exactly as configured.
    assert_eq!(c.as_str(), "  0\t0   * * *  ");
}

#[test]
fn names_are_case_insensitive_and_equal_their_numbers() {
    let same = [
        ("0 17 * * sun", "0 17 * * 1"),
        ("0 17 * * SAT", "0 17 * * 7"),
        ("0 17 * * L", "0 17 * * 7"),
        ("10 7 * * mon-fri", "10 7 * * 2-6"),
        ("10 7 * * Mon-Fri", "10 7 * * MON-FRI"),
        ("0 18 * * 6L", "0 18 * * friL"),
        ("0 18 * * FRI#3", "0 18 * * 6#3"),
        ("0 0 * aug *", "0 0 * 8 *"),
        ("0 0 * JAN-MAR *", "0 0 * 1-3 *"),
        ("0 0 * * FRI-MON", "0 0 * * 1,2,6,7"),
        ("50-10 * * * *", "0-10,50-59 * * * *"),
        ("*/20 * * * *", "0,20,40 * * * *"),
        ("5/20 * * * *", "5,25,45 * * * *"),
        ("1-30/5 * * * *", "1,6,11,16,21,26 * * * *"),
        ("0 0 * * */2", "0 0 * * SUN,TUE,THU,SAT"),
        ("0 0 * */3 *", "0 0 * 1,4,7,10 *"),
        ("0 0 */10 * *", "0 0 1,11,21,31 * *"),
        ("0 0 * * 2-2", "0 0 * * 2"),
    ];
    for (a, b) in same {
        assert!(cron(a).same_schedule(&cron(b)), "{a} == {b}");
    }
    // Day-of-week counts from Sunday = 1, not Monday = 1.
    assert!(!cron("0 17 * * 1").same_schedule(&cron("0 17 * * MON")));
}

#[test]
fn a_restricted_star_is_not_a_bare_star() {
    // `*/1` restricts the field, so with a restricted day-of-week the two
    // day fields are ORed; a bare `*` leaves day-of-week alone in charge.
    assert!(!cron("0 0 */1 * MON").same_schedule(&cron("0 0 * * MON")));
}

#[test]
fn wrong_number_of_fields() {
    let msg = |n: usize, s: &str| {
        format!(
            "invalid cron string \"{s}\": expected 5 fields (minute hour day-of-month month day-of-week), found {n}"
        )
    };
    assert_eq!(parse_err(""), msg(0, ""));
    assert_eq!(parse_err("* * * *"), msg(4, "* * * *"));
    assert_eq!(parse_err("0 0 * * * *"), msg(6, "0 0 * * * *"));
    assert!(matches!(
        CronExpr::parse("@daily"),
        Err(CronError::FieldCount { found: 1, .. })
    ));
}

#[test]
fn step_rules() {
    assert_eq!(
        parse_err("*/0 * * * *"),
        "invalid cron string \"*/0 * * * *\": minute: step must be ≥ 1 (in \"*/0\")"
    );
    assert_eq!(
        parse_err("1-30/0 * * * *"),
        "invalid cron string \"1-30/0 * * * *\": minute: step must be ≥ 1 (in \"1-30/0\")"
    );
    let too_big = [
        (
            "*/60 * * * *",
            "minute: step must be at most 59 (in \"*/60\")",
        ),
        (
            "* */24 * * *",
            "hour: step must be at most 23 (in \"*/24\")",
        ),
        (
            "* * */31 * *",
            "day-of-month: step must be at most 30 (in \"*/31\")",
        ),
        (
            "* * * */12 *",
            "month: step must be at most 11 (in \"*/12\")",
        ),
        (
            "* * * * */7",
            "day-of-week: step must be at most 6 (in \"*/7\")",
        ),
        (
            "*/99999999999 * * * *",
            "minute: step must be at most 59 (in \"*/99999999999\")",
        ),
        (
            "*/x * * * *",
            "minute: step \"x\" is not a number (in \"*/x\")",
        ),
    ];
    for (text, problem) in too_big {
        assert_eq!(
            parse_err(text),
            format!("invalid cron string \"{text}\": {problem}")
        );
    }
}

#[test]
fn values_out_of_range() {
    let cases = [
        ("60 * * * *", "minute: \"60\" is out of range 0-59"),
        ("* 24 * * *", "hour: \"24\" is out of range 0-23"),
        ("* * 0 * *", "day-of-month: \"0\" is out of range 1-31"),
        ("* * 32 * *", "day-of-month: \"32\" is out of range 1-31"),
        ("* * * 0 *", "month: \"0\" is out of range 1-12"),
        ("* * * 13 *", "month: \"13\" is out of range 1-12"),
        // Cloudflare refuses `0 0 * * 0`: Sunday is 1 there.
        (
            "0 0 * * 0",
            "day-of-week: \"0\" is out of range 1-7 (1 = SUN .. 7 = SAT)",
        ),
        (
            "* * * * 8",
            "day-of-week: \"8\" is out of range 1-7 (1 = SUN .. 7 = SAT)",
        ),
        (
            "* * * * 0-6",
            "day-of-week: \"0\" is out of range 1-7 (1 = SUN .. 7 = SAT)",
        ),
        ("1-60 * * * *", "minute: \"60\" is out of range 0-59"),
        (
            "99999999999 * * * *",
            "minute: \"99999999999\" is out of range 0-59",
        ),
        ("* * 32W * *", "day-of-month: \"32\" is out of range 1-31"),
    ];
    for (text, problem) in cases {
        assert_eq!(
            parse_err(text),
            format!("invalid cron string \"{text}\": {problem}")
        );
    }
}

#[test]
fn unknown_tokens() {
    let cases = [
        (
            "* * * FOO *",
            "month: \"FOO\" is not a number or a month name (JAN-DEC)",
        ),
        (
            "* * * JANUARY *",
            "month: \"JANUARY\" is not a number or a month name (JAN-DEC)",
        ),
        (
            "* * * * MONDAY",
            "day-of-week: \"MONDAY\" is not a number or a day name (SUN-SAT)",
        ),
        ("L * * * *", "minute: \"L\" is not a number"),
        ("* 1W * * *", "hour: \"1W\" is not a number"),
        (
            "* * * L *",
            "month: \"L\" is not a number or a month name (JAN-DEC)",
        ),
        ("* * MON * *", "day-of-month: \"MON\" is not a number"),
        ("1-2-3 * * * *", "minute: \"2-3\" is not a number"),
        (
            "5- * * * *",
            "minute: a value is missing; expected a number",
        ),
        (
            "-5 * * * *",
            "minute: a value is missing; expected a number",
        ),
        ("1,,2 * * * *", "minute: empty list item (in \"1,,2\")"),
        (
            "*,5 * * * *",
            "minute: \"*\" cannot be combined with other values (in \"*,5\")",
        ),
        (
            "* * ? * MON",
            "day-of-month: \"?\" is not supported; use \"*\" (in \"?\")",
        ),
        (
            "* * * * ?",
            "day-of-week: \"?\" is not supported; use \"*\" (in \"?\")",
        ),
        // The letters are upper case only, as on Cloudflare.
        ("* * lw * *", "day-of-month: \"lw\" is not a number"),
    ];
    for (text, problem) in cases {
        assert_eq!(
            parse_err(text),
            format!("invalid cron string \"{text}\": {problem}")
        );
    }
}

#[test]
fn l_w_and_hash_rules() {
    let cases = [
        (
            "* * 1,L * *",
            "day-of-month: \"L\" and \"W\" cannot be part of a list (in \"1,L\")",
        ),
        (
            "* * 1W,15 * *",
            "day-of-month: \"L\" and \"W\" cannot be part of a list (in \"1W,15\")",
        ),
        (
            "* * L-31 * *",
            "day-of-month: offset after \"L-\" must be 1-30 (in \"L-31\")",
        ),
        (
            "* * L-0 * *",
            "day-of-month: offset after \"L-\" must be 1-30 (in \"L-0\")",
        ),
        (
            "* * L-W * *",
            "day-of-month: offset after \"L-\" must be 1-30 (in \"L-W\")",
        ),
        (
            "* * L3 * *",
            "day-of-month: \"L3\" is not a valid \"L\" expression (L, LW, L-n or L-nW)",
        ),
        (
            "* * W * *",
            "day-of-month: \"W\" needs a day before it, as in \"15W\" (in \"W\")",
        ),
        ("* * 1-5W * *", "day-of-month: \"1-5\" is not a number"),
        (
            "* * * * MON#6",
            "day-of-week: the number after \"#\" must be 1-5 (in \"MON#6\")",
        ),
        (
            "* * * * 2#0",
            "day-of-week: the number after \"#\" must be 1-5 (in \"2#0\")",
        ),
        (
            "* * * * 2#",
            "day-of-week: the number after \"#\" must be 1-5 (in \"2#\")",
        ),
        (
            "* * * * 0#1",
            "day-of-week: \"0\" is out of range 1-7 (1 = SUN .. 7 = SAT)",
        ),
        (
            "* * * * 1L,2",
            "day-of-week: \"L\" and \"#\" cannot be part of a list (in \"1L,2\")",
        ),
        (
            "* * * * MON#1,FRI#1",
            "day-of-week: \"L\" and \"#\" cannot be part of a list (in \"MON#1,FRI#1\")",
        ),
        (
            "* * * * 8L",
            "day-of-week: \"8\" is out of range 1-7 (1 = SUN .. 7 = SAT)",
        ),
    ];
    for (text, problem) in cases {
        assert_eq!(
            parse_err(text),
            format!("invalid cron string \"{text}\": {problem}")
        );
    }
}

#[test]
fn errors_name_their_field() {
    for (text, field) in [
        ("x * * * *", CronField::Minute),
        ("* x * * *", CronField::Hour),
        ("* * x * *", CronField::DayOfMonth),
        ("* * * x *", CronField::Month),
        ("* * * * x", CronField::DayOfWeek),
    ] {
        let err = CronExpr::parse(text).unwrap_err();
        assert_eq!(err.field(), Some(field), "{text}");
    }
}

#[test]
fn impossible_expressions_parse_but_never_match() {
    // Cloudflare's parser accepts these; they simply never fire.
    for text in [
        "0 0 31 2 *",
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
        "0 0 L-30 2 *",
    ] {
        assert!(!cron(text).is_satisfiable(), "{text}");
    }
    // With a restricted day-of-week the OR rule makes them possible again.
    assert!(cron("0 0 31 2 MON").is_satisfiable());
    assert!(cron("0 0 29 2 *").is_satisfiable());
}

#[test]
fn from_str_is_parse() {
    let c: CronExpr = "0 * * * *".parse().unwrap();
    assert_eq!(c, cron("0 * * * *"));
    assert!("0 * * *".parse::<CronExpr>().is_err());
}
