//! OS Login certificates (`v1beta`, enterprise.md §6.2): provisioning a
//! POSIX account for a project (`POST users/{u}/projects/{p}`) and
//! `projects/{p}/locations/{region}:signSshPublicKey`, which signs the key
//! with the configured CA (`Config::oslogin_ca_key`, through `ssh-keygen
//! -s`) for the caller's POSIX user in that project, valid from a minute
//! ago for `Config::oslogin_cert_secs`; 404 until the account exists.

use serde_json::{Value, json};

use crate::compute::error;
use crate::oauth::Reply;
use crate::state::State;

pub fn handle(state: &State, caller: &str, method: &str, rest: &str, body: &[u8]) -> Reply {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let segs: Vec<&str> = rest.split('/').collect();
    match (method, segs.as_slice()) {
        ("POST", ["users", u, "projects", p]) => {
            if percent(u) != caller {
                return error(403, "forbidden", "The caller does not have permission");
            }
            state
                .cloud
                .lock()
                .unwrap()
                .profiles
                .entry(caller.to_string())
                .or_default()
                .posix = true;
            state.event(format!(
                "oslogin provision project={p} regions={}",
                v["regions"]
            ));
            let user = state.config.posix_username_in(caller, p);
            (200, json!({"username": user, "accountId": p}).to_string())
        }
        ("POST", ["projects", p, "locations", loc]) if loc.ends_with(":signSshPublicKey") => {
            let region = loc.trim_end_matches(":signSshPublicKey");
            sign(state, caller, p, region, &v)
        }
        _ => error(
            404,
            "notFound",
            &format!("no OS Login v1beta route for {method} {rest}"),
        ),
    }
}

fn percent(s: &str) -> String {
    form_urlencoded::parse(format!("u={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn sign(state: &State, caller: &str, project: &str, region: &str, v: &Value) -> Reply {
    let Some(ca) = &state.config.oslogin_ca_key else {
        return error(
            400,
            "failedPrecondition",
            "certificates are not configured in this fake",
        );
    };
    let posix = state
        .cloud
        .lock()
        .unwrap()
        .profiles
        .get(caller)
        .is_some_and(|p| p.posix);
    if !posix {
        state.event(format!("oslogin sign 404 project={project}"));
        return error(
            404,
            "notFound",
            &format!("No POSIX account for {caller} in project {project}"),
        );
    }
    let key = v["sshPublicKey"].as_str().unwrap_or("").trim().to_string();
    let instance = v["computeInstance"].as_str().unwrap_or("");
    let want = format!("projects/{project}/zones/");
    if !instance.starts_with(&want) || !instance.contains("/instances/") || region.is_empty() {
        return error(
            400,
            "badRequest",
            &format!("invalid computeInstance {instance:?}"),
        );
    }
    let zone = instance[want.len()..].split('/').next().unwrap_or("");
    if !zone.starts_with(&format!("{region}-")) {
        return error(
            400,
            "badRequest",
            &format!("instance zone {zone} is not in {region}"),
        );
    }
    let dir = state
        .state_dir
        .join(format!("sign-{}", crate::state::random_hex(6)));
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join("k.pub"), format!("{key}\n")).is_err()
    {
        return error(500, "internal", "cannot write a temporary file");
    }
    let user = state.config.posix_username_in(caller, project);
    let out = std::process::Command::new("ssh-keygen")
        .arg("-q")
        .arg("-s")
        .arg(ca)
        .args(["-I", caller, "-n", &user, "-V"])
        .arg(format!("-1m:+{}s", state.config.oslogin_cert_secs))
        .arg(dir.join("k.pub"))
        .output();
    let cert = std::fs::read_to_string(dir.join("k-cert.pub"));
    let _ = std::fs::remove_dir_all(&dir);
    match (out, cert) {
        (Ok(o), Ok(c)) if o.status.success() => {
            state.event(format!("oslogin sign project={project} region={region} instance={instance} principal={user}"));
            (200, json!({"signedSshPublicKey": c.trim()}).to_string())
        }
        _ => error(400, "badRequest", "Invalid SSH public key"),
    }
}
