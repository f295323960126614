fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opts = hearth_config::LoadOptions { env: args.get(2).map(|s| s.as_str()), ..Default::default() };
    match hearth_config::load(std::path::Path::new(&args[1]), &opts) {
        Ok(l) => { println!("{:#?}", l.config); for w in l.warnings { println!("W {w}"); } }
        Err(e) => { println!("{e}"); for w in e.warnings { println!("W {w}"); } }
    }
}
