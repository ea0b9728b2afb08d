//! `fake-gcp --state-dir DIR --config FILE`: runs the fake until killed and
//! prints one JSON line with its URLs when ready.

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!(
        "usage: fake-gcp --state-dir DIR --config FILE   (FAKE_GCP_LOG=1 logs events to stderr)"
    );
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut state_dir: Option<PathBuf> = None;
    let mut config: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--state-dir" => state_dir = args.next().map(PathBuf::from),
            "--config" => config = args.next().map(PathBuf::from),
            _ => usage(),
        }
    }
    let (Some(state_dir), Some(config)) = (state_dir, config) else {
        usage()
    };
    let cfg: fake_gcp::Config = match std::fs::read(&config)
        .map_err(|e| e.to_string())
        .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fake-gcp: cannot read {}: {e}", config.display());
            std::process::exit(1);
        }
    };
    let fake = match fake_gcp::FakeGcp::start(cfg, &state_dir).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-gcp: {e:#}");
            std::process::exit(1);
        }
    };
    println!("{}", serde_json::to_string(&fake.info).expect("json"));
    let _ = tokio::signal::ctrl_c().await;
}
