//! Service-account impersonation end to end: the fake's IAM Credentials
//! endpoint (checks the caller's token and each hop's Token Creator
//! grant, records the delegates), a relay that only admits the service
//! account, OS Login as `sa_<uniqueId>`, and real ssh through the config
//! `setup` wrote.

mod common;

use common::*;
use fake_gcp::config::ServiceAccount;

const SA: &str = "deployer@iap-proj-a.iam.gserviceaccount.com";
const SA_ID: &str = "100110341521630214262";
const HOP: &str = "hop@iap-proj-a.iam.gserviceaccount.com";
const LOCKED: &str = "locked@iap-proj-a.iam.gserviceaccount.com";

/// The fleet, where only `SA` may open tunnels: the caller
/// ([`ACCOUNT`]) may impersonate `SA` and `HOP`, `HOP` may impersonate
/// `SA`, and nobody `LOCKED`.
fn fleet() -> Fleet {
    Fleet::new(|c| {
        let sa = |email: &str, id: &str, creators: &[&str]| ServiceAccount {
            email: email.into(),
            unique_id: id.into(),
            token_creators: creators.iter().map(|s| s.to_string()).collect(),
        };
        c.service_accounts = vec![
            sa(SA, SA_ID, &[ACCOUNT, HOP]),
            sa(HOP, "100110341521630214263", &[ACCOUNT]),
            sa(LOCKED, "100110341521630214264", &[]),
        ];
        c.tunnel_principals = Some(vec![SA.into()]);
    })
}

fn grants(f: &Fleet) -> Vec<String> {
    f.fake
        .state
        .events()
        .into_iter()
        .filter(|e| e.starts_with("iamcredentials generateAccessToken"))
        .collect()
}

#[test]
fn setup_and_ssh_act_as_the_service_account() {
    let f = fleet();
    // The caller alone may not tunnel here.
    let out = f.banner(&[], &[], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));

    let out = f
        .iap_ssh()
        .args(["--impersonate-service-account", SA, "setup"])
        .args(["--project", PROJ_A, "--project", PROJ_B])
        .output()
        .unwrap();
    let summary = stderr_of(&out);
    assert!(out.status.success(), "{summary}");
    let os_user = format!("sa_{SA_ID}");
    assert!(
        summary.contains(&format!("OS Login ({SA} as {os_user}): written (1 VM)")),
        "{summary}"
    );
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(cfg.contains(&format!("User {os_user}")), "{cfg}");
    assert!(
        cfg.contains(&format!("--impersonate-service-account={SA} proxy")),
        "the ProxyCommand must act as the service account too:\n{cfg}"
    );
    let first = grants(&f);
    assert!(!first.is_empty());
    assert!(
        first.iter().all(|e| e.contains(&format!(
            "caller={ACCOUNT} target={SA} delegates= raw_delegates=absent"
        ))),
        "{first:?}"
    );

    // Plain ssh through the written config: OS Login as sa_<id> on one VM,
    // metadata keys on another; the relay admits only the service account.
    f.wait_keys("vm-oslogin", &os_user);
    f.wait_keys("vm-project", LOCAL_USER);
    assert_eq!(f.ssh_ok("vm-oslogin", "id -un").trim(), os_user);
    assert_eq!(f.ssh_ok("vm-project", "echo ok").trim(), "ok");
    // The impersonated token is cached: more connections, no more calls.
    let before = grants(&f).len();
    assert_eq!(f.ssh_ok("vm-project", "echo again").trim(), "again");
    assert_eq!(grants(&f).len(), before, "{:?}", grants(&f));
}

#[test]
fn a_chain_sends_delegates_in_the_documented_form() {
    let f = fleet();
    let chain = format!("{HOP},{SA}");
    let out = f.banner(
        &[],
        &[("CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT", chain.as_str())],
        &[],
    );
    assert_banner(&out);
    let g = grants(&f);
    assert_eq!(g.len(), 1, "{g:?}");
    assert!(
        g[0].contains(&format!(
            "caller={ACCOUNT} target={SA} delegates={HOP} raw_delegates=[\"projects/-/serviceAccounts/{HOP}\"]"
        )),
        "{g:?}"
    );
}

#[test]
fn gcloud_property_and_adc_file_select_impersonation() {
    let f = fleet();
    // gcloud's auth/impersonate_service_account.
    let gdir = f.tmp.path().join("gcloud");
    std::fs::create_dir_all(gdir.join("configurations")).unwrap();
    std::fs::write(gdir.join("active_config"), "default").unwrap();
    std::fs::write(
        gdir.join("configurations/config_default"),
        format!("[auth]\nimpersonate_service_account = {SA}\n"),
    )
    .unwrap();
    let g = gdir.display().to_string();
    assert_banner(&f.banner(&[], &[("CLOUDSDK_CONFIG", g.as_str())], &[]));
    assert_eq!(grants(&f).len(), 1);

    // An ADC file of type impersonated_service_account, over the fake's
    // authorized-user credentials (refresh-token grant).
    let user: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&f.fake.info.authorized_user_file).unwrap()).unwrap();
    let adc = f.tmp.path().join("imp.json");
    std::fs::write(
        &adc,
        serde_json::json!({
            "delegates": [],
            "service_account_impersonation_url": format!(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{SA}:generateAccessToken"
            ),
            "source_credentials": user,
            "type": "impersonated_service_account",
        })
        .to_string(),
    )
    .unwrap();
    let a = adc.display().to_string();
    let mut c = f.iap_ssh();
    c.env_remove("IAP_SSH_ACCESS_TOKEN")
        .env("GOOGLE_APPLICATION_CREDENTIALS", &a)
        .arg("doctor");
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &stderr_of(&out);
    assert!(
        text.contains(&format!(
            "credentials: impersonating {SA} (as {ACCOUNT}); token accepted for {SA}"
        )),
        "{text}"
    );
    assert_banner(&f.banner(
        &[],
        &[("GOOGLE_APPLICATION_CREDENTIALS", &a)],
        &["IAP_SSH_ACCESS_TOKEN"],
    ));
}

#[test]
fn missing_token_creator_is_one_line_naming_the_role() {
    let f = fleet();
    let out = f.banner(&["--impersonate-service-account", LOCKED], &[], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert!(
        line.contains(&format!(
            "cannot impersonate {LOCKED}: you lack roles/iam.serviceAccountTokenCreator on {LOCKED}"
        )) && line.contains(&format!(
            "gcloud iam service-accounts add-iam-policy-binding {LOCKED} --member=user:YOU --role=roles/iam.serviceAccountTokenCreator"
        )),
        "{line}"
    );
    // A chain whose first hop refuses the caller: the fix names that hop
    // and says each hop needs the role on the next.
    let chain = format!("{LOCKED},{SA}");
    let out = f.banner(&["--impersonate-service-account", &chain], &[], &[]);
    assert_eq!(out.status.code(), Some(4));
    let line = one_line(&out);
    assert!(
        line.contains(&format!(
            "add-iam-policy-binding {LOCKED} --member=user:YOU"
        )) && line.contains("each account in the chain"),
        "{line}"
    );
    // A service-account key as the caller: the fix names it as the member.
    let key = f.fake.info.service_account_file.display().to_string();
    let out = f.banner(
        &["--impersonate-service-account", LOCKED],
        &[("GOOGLE_APPLICATION_CREDENTIALS", key.as_str())],
        &["IAP_SSH_ACCESS_TOKEN"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(
        one_line(&out).contains(&format!(
            "add-iam-policy-binding {LOCKED} --member=serviceAccount:tunnel-sa@fake-project.iam.gserviceaccount.com --role"
        )),
        "{}",
        one_line(&out)
    );

    // A hostile value never reaches a URL or a shell: refused up front.
    let out = f.banner(
        &[
            "--impersonate-service-account",
            "$(touch pwned)@x.iam.gserviceaccount.com",
        ],
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        one_line(&out).contains("is not a service account email"),
        "{}",
        one_line(&out)
    );
    assert!(!f.home.join("pwned").exists());
}

#[test]
fn list_and_ssh_act_as_the_service_account() {
    let f = fleet();
    let os_user = format!("sa_{SA_ID}");
    // `iap-ssh ssh` publishes the key to the service account's profile and
    // logs in as its POSIX user through a relay that admits only it.
    let out = f
        .iap_ssh()
        .args(["--impersonate-service-account", SA, "ssh"])
        .args(["--project", PROJ_A, "--zone", "us-central1-a", "vm-oslogin"])
        .args(["--", "id -un"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        os_user,
        "{}",
        stderr_of(&out)
    );

    // `list` reads the service account's profile: its POSIX user, with the
    // key `ssh` published there; as the caller, the key is not in its own.
    let list = |global: &[&str]| {
        let rows = f.list_json(global, &["--project", PROJ_A]);
        let row = rows
            .iter()
            .find(|r| r["name"] == "vm-oslogin")
            .cloned()
            .unwrap();
        (
            row["user"].as_str().unwrap().to_string(),
            row["key_published"].as_bool().unwrap(),
        )
    };
    assert_eq!(
        list(&["--impersonate-service-account", SA]),
        (os_user.clone(), true)
    );
    let (user, published) = list(&[]);
    assert_ne!(user, os_user);
    assert!(!published);
}

#[test]
fn the_callers_token_and_each_chains_are_cached_apart() {
    let f = fleet();
    let creds = f.fake.info.authorized_user_file.display().to_string();
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", creds.as_str())];
    let unset = ["IAP_SSH_ACCESS_TOKEN"];
    // As the service account: one exchange, then its token from the cache.
    for _ in 0..2 {
        assert_banner(&f.banner(&["--impersonate-service-account", SA], &env, &unset));
    }
    assert_eq!(grants(&f).len(), 1, "{:?}", grants(&f));
    // As the caller: its own token (not the service account's cached one),
    // which this relay refuses.
    let out = f.banner(&[], &env, &unset);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(one_line(&out).contains("4033"), "{}", one_line(&out));
    // Another chain to the same target: its own exchange.
    let chain = format!("{HOP},{SA}");
    assert_banner(&f.banner(&["--impersonate-service-account", &chain], &env, &unset));
    let g = grants(&f);
    assert_eq!(g.len(), 2, "{g:?}");
    assert!(g[1].contains(&format!("delegates={HOP}")), "{g:?}");
}

#[test]
fn a_failing_iam_credentials_is_asked_again() {
    let f = Fleet::new(|c| {
        c.service_accounts = vec![ServiceAccount {
            email: SA.into(),
            unique_id: SA_ID.into(),
            token_creators: vec![ACCOUNT.into()],
        }];
        c.tunnel_principals = Some(vec![SA.into()]);
        c.faults.api_http = vec![503, 429];
        c.faults.api_http_path = Some(":generateAccessToken".into());
    });
    assert_banner(&f.banner(&["--impersonate-service-account", SA], &[], &[]));
    assert_eq!(f.count("fault: api POST"), 2);
    assert_eq!(grants(&f).len(), 1, "{:?}", grants(&f));
}
