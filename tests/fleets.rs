//! Whole fleets: `setup`/`list` over every project the caller can see
//! (`--all-projects`, Cloud Resource Manager), narrowed by a Compute
//! filter (`--filter`) and zones (`--zone`).

mod common;

use common::*;

fn fleet() -> Fleet {
    Fleet::new(|c| {
        for (id, state, disabled) in [
            ("iap-proj-empty", None, false),
            ("iap-proj-noapi", None, true),
            ("iap-proj-gone", Some("DELETE_REQUESTED"), false),
        ] {
            c.projects.push(fake_gcp::config::Project {
                id: id.into(),
                lifecycle_state: state.map(Into::into),
                compute_disabled: disabled,
                ..Default::default()
            });
        }
        let mut gone = fake_gcp::Instance::new(
            "iap-proj-gone",
            "us-east1-b",
            "old-vm",
            "7000000000000000099",
        );
        gone.listed = true;
        c.instances.push(gone);
        for i in c.instances.iter_mut() {
            if i.name == "vm-project" || (i.name == "web" && i.project == PROJ_B) {
                i.labels.insert("env".into(), "prod".into());
            }
        }
    })
}

fn blocks(cfg: &str) -> Vec<String> {
    cfg.lines()
        .filter_map(|l| l.strip_prefix("Host "))
        .filter(|l| *l != "*")
        .map(str::to_string)
        .collect()
}

#[test]
fn all_projects_sets_up_every_visible_project_and_skips_what_it_cannot_list() {
    let f = fleet();
    let out = f
        .iap_ssh()
        .args(["setup", "--all-projects"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("iap-ssh: 4 active projects visible"), "{err}");
    assert!(
        err.contains(
            "skipped 1 project without the Compute Engine API or access to it: iap-proj-noapi"
        ),
        "{err}"
    );
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    let b = blocks(&cfg);
    assert!(
        b.contains(&"vm-oslogin vm-oslogin.us-central1-a.iap-proj-a".to_string()),
        "{b:?}"
    );
    assert!(
        b.contains(&"vm-blocked vm-blocked.europe-west1-b.iap-proj-b".to_string()),
        "{b:?}"
    );
    // Wildcards only for the projects that have VMs; nothing of the
    // project being deleted.
    assert!(b.contains(&"*.*.iap-proj-a \"!*'*\"".to_string()), "{b:?}");
    assert!(b.contains(&"*.*.iap-proj-b \"!*'*\"".to_string()), "{b:?}");
    assert!(
        !cfg.contains("iap-proj-empty") && !cfg.contains("iap-proj-gone"),
        "{cfg}"
    );
    assert!(f.count("crm projects.list") >= 1);
    // And the result works.
    f.wait_keys("vm-project", LOCAL_USER);
    assert_eq!(f.ssh_ok("vm-project", "whoami").trim(), LOCAL_USER);

    // list sees the same VMs.
    let rows = f.list_json(&[], &["--all-projects"]);
    let mut names: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["project"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "iap-proj-a/vm-oslogin",
            "iap-proj-a/vm-project",
            "iap-proj-a/web",
            "iap-proj-b/stopped",
            "iap-proj-b/vm-blocked",
            "iap-proj-b/web"
        ]
    );
}

#[test]
fn a_filter_and_zones_narrow_the_fleet() {
    let f = fleet();
    for (args, present, absent) in [
        (
            &["--filter", "labels.env=prod"][..],
            [
                "vm-project vm-project.us-central1-b.iap-proj-a",
                "web web.europe-west1-b.iap-proj-b",
            ],
            ["vm-oslogin", "vm-blocked"],
        ),
        (
            &["--zone", "us-central1-b", "--zone", "europe-west1-c"][..],
            [
                "vm-project vm-project.us-central1-b.iap-proj-a",
                "stopped stopped.europe-west1-c.iap-proj-b",
            ],
            ["Host web", "vm-oslogin"],
        ),
    ] {
        f.setup(args);
        let cfg = std::fs::read_to_string(f.config_path()).unwrap();
        let b = blocks(&cfg);
        for want in present {
            assert!(b.contains(&want.to_string()), "{args:?}: {want}: {b:?}");
        }
        for not in absent {
            assert!(!cfg.contains(not), "{args:?}: {not}: {cfg}");
        }
    }

    // Both: the filter is applied by the API, the zones here.
    let rows = f.list_json(
        &[],
        &[
            "--project",
            PROJ_A,
            "--project",
            PROJ_B,
            "--filter",
            "labels.env=prod",
            "--zone",
            "europe-west1-b",
        ],
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["name"], "web");
    assert_eq!(rows[0]["project"], PROJ_B);
}

#[test]
fn bad_selections_are_one_line_each() {
    let f = fleet();
    for (args, code, want) in [
        (vec!["--zone", "US Central"], 2, "is not a zone name"),
        (vec!["--filter", " "], 2, "is not a filter expression"),
        (
            vec!["--filter", "labels.env ~ prod"],
            1,
            "Invalid list filter expression",
        ),
        (
            vec!["--all-projects", "--project", PROJ_A],
            2,
            "cannot be used with",
        ),
    ] {
        let out = f
            .iap_ssh()
            .arg("setup")
            .args(if args[0] == "--all-projects" {
                vec![]
            } else {
                vec!["--project", PROJ_A]
            })
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr_of(&out)
        );
        assert!(
            stderr_of(&out).contains(want),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    assert!(!f.config_path().exists());
}
