"""Shared by the benchmark drivers: start fake-gcp with a configuration,
and the environment that points iap-ssh (and gcloud) at it."""

import json
import os
import subprocess


def start_fake(fake_bin, d, config):
    """Writes `config` to d/fake.json, starts fake-gcp, returns (process, ready info)."""
    with open(f"{d}/fake.json", "w") as f:
        json.dump(config, f)
    proc = subprocess.Popen([fake_bin, "--state-dir", f"{d}/fake", "--config", f"{d}/fake.json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, json.loads(proc.stdout.readline())


def fake_env(ready, home, gcloud_dir=None):
    """A clean environment (no ambient Google settings or proxies) with HOME,
    every IAP_SSH_* endpoint on the fake, and, given `gcloud_dir`, gcloud
    configured to use the same fake (token, CA, Compute endpoint)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IAP_SSH_", "CLOUDSDK_", "GOOGLE_APPLICATION"))
           and k.lower() not in ("https_proxy", "http_proxy")}
    env.update({
        "HOME": home, "RUST_BACKTRACE": "0",
        "IAP_SSH_TUNNEL_URL": ready["tunnel_url"], "IAP_SSH_COMPUTE_URL": ready["api_url"],
        "IAP_SSH_OSLOGIN_URL": ready["oslogin_url"], "IAP_SSH_TOKEN_URL": ready["token_url"],
        "IAP_SSH_TOKENINFO_URL": ready["tokeninfo_url"], "IAP_SSH_IAP_URL": ready["iap_url"],
        "IAP_SSH_CRM_URL": ready["crm_url"],
        "IAP_SSH_CA_FILE": ready["ca_file"], "IAP_SSH_ACCESS_TOKEN": ready["access_token"],
    })
    if gcloud_dir:
        env.update({
            "CLOUDSDK_CONFIG": gcloud_dir, "CLOUDSDK_AUTH_ACCESS_TOKEN": ready["access_token"],
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            # gcloud 528 applies custom_ca_certs_file to the relay only;
            # its REST calls need requests' own variable.
            "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": ready["ca_file"], "REQUESTS_CA_BUNDLE": ready["ca_file"],
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": ready["api_url"],
        })
    return env


def drain(stream, n):
    """Reads up to n bytes from a pipe, discarding them; returns the count."""
    got = 0
    while got < n:
        b = stream.read1(1 << 20)
        if not b:
            break
        got += len(b)
    return got
