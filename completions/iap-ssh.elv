
use builtin;
use str;

set edit:completion:arg-completer[iap-ssh] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'iap-ssh'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'iap-ssh'= {
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand setup 'Publish your SSH key and write Host blocks so plain `ssh VM` works'
            cand ssh 'Run ssh to a VM through IAP (no setup needed)'
            cand scp 'Copy files to or from a VM with scp through IAP (no setup needed)'
            cand list 'List VMs with their alias, zone, status, user and where your key is'
            cand doctor 'Check everything a tunnel to a VM needs and say how to fix what is missing'
            cand proxy 'Carry stdin/stdout to a VM port through IAP (an OpenSSH ProxyCommand)'
            cand forward 'Forward local TCP ports to VM ports through IAP (RDP, databases, ...)'
            cand rdp 'RDP to a Windows VM through IAP; --reset-password creates or resets the Windows account'
            cand grant 'Grant or remove IAP tunnel access (roles/iap.tunnelResourceAccessor) on a project, zone or VM'
            cand oslogin-cert 'Renew an OS Login certificate when it runs low (ssh runs this from the config setup wrote)'
            cand completions 'Print a shell completion script'
            cand man 'Print the man page (roff)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'iap-ssh;setup'= {
            cand --project 'Project (repeatable; default: gcloud''s core/project)'
            cand --filter 'Only VMs matching this Compute list filter (aggregatedList''s `filter`), e.g. labels.env=prod or "name eq web-.*"'
            cand --zone 'Only VMs in this zone (repeatable)'
            cand --key-file 'Private key to use or create (default: ~/.ssh/google_compute_engine, shared with gcloud)'
            cand --ssh-config 'ssh config file to write the managed section into (default: ~/.ssh/config)'
            cand --known-hosts 'Known-hosts file for VM host keys (default: ~/.ssh/google_compute_known_hosts, shared with gcloud)'
            cand --user 'User name for metadata keys (default: your local login name; OS Login VMs use your OS Login user)'
            cand --key-ttl 'Lifetime of the published key: 30d, 12h, ... or `never`; a re-run renews it when a quarter is left'
            cand --exe 'iap-ssh executable to write into ProxyCommand lines (default: the path you ran it by, e.g. a symlink that survives upgrades)'
            cand --control-master 'Share one connection per VM (ssh''s ControlMaster), kept open this long after the last session: 10m (the default), 90s, 1h, or `yes` (until `ssh -O exit`); sockets in ~/.ssh/iap-ssh/'
            cand --putty-reg 'With --putty: the same sessions as a Windows registry file'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand --all-projects 'Every active project you can see (Cloud Resource Manager); projects without the Compute Engine API or access to it are skipped'
            cand --dry-run 'Print what would change (a diff and the keys to publish) and change nothing'
            cand --remove 'Remove the managed section from the ssh config (no API calls)'
            cand --internal-ip 'Write the VMs'' internal IPs (HostName) instead of IAP tunnels, for use from inside the VPC or over a VPN; VMs created later still go through IAP'
            cand --putty 'Also write the key as a PuTTY .ppk (KEY.ppk) and one PuTTY saved session per VM (plink -load VM), host keys pinned'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;ssh'= {
            cand --project 'Project (default: from NAME.ZONE.PROJECT, else gcloud''s core/project)'
            cand --zone 'Zone (default: from NAME.ZONE.PROJECT, gcloud''s compute/zone, else looked up)'
            cand --key-file 'Private key (default: ~/.ssh/google_compute_engine; created when missing)'
            cand --known-hosts 'Known-hosts file (default: ~/.ssh/google_compute_known_hosts)'
            cand --key-ttl 'Lifetime of a key published by this command: 30d, 12h, ... or `never`'
            cand --port 'Port on the VM'
            cand --wait 'While the VM is booting (status PROVISIONING or STAGING, then close 4003/4047 until sshd listens), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Default: fail at once'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand --dry-run 'Print the command (shell-quoted, ready to paste) and change nothing'
            cand --internal-ip 'Connect to the VM''s internal IP directly, without IAP (you are on its VPC network or a VPN into it); keys, user and host-key pinning stay the same'
            cand --print-rsh 'Print an ssh command for `rsync -e "$(iap-ssh ssh --print-rsh VM)"` and exit'
            cand --putty 'Run PuTTY''s plink instead of ssh (the key as KEY.ppk, host keys pinned with -hostkey, the tunnel as -proxycmd)'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;scp'= {
            cand --project 'Project (default: from NAME.ZONE.PROJECT, else gcloud''s core/project)'
            cand --zone 'Zone (default: from NAME.ZONE.PROJECT, gcloud''s compute/zone, else looked up)'
            cand --key-file 'Private key (default: ~/.ssh/google_compute_engine; created when missing)'
            cand --known-hosts 'Known-hosts file (default: ~/.ssh/google_compute_known_hosts)'
            cand --key-ttl 'Lifetime of a key published by this command: 30d, 12h, ... or `never`'
            cand --port 'Port on the VM'
            cand --wait 'While the VM is booting (status PROVISIONING or STAGING, then close 4003/4047 until sshd listens), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Default: fail at once'
            cand --scp-flag 'Extra scp flag (repeatable), e.g. --scp-flag=-O'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand --dry-run 'Print the command (shell-quoted, ready to paste) and change nothing'
            cand --internal-ip 'Connect to the VM''s internal IP directly, without IAP (you are on its VPC network or a VPN into it); keys, user and host-key pinning stay the same'
            cand -r 'Copy directories recursively'
            cand --recurse 'Copy directories recursively'
            cand -C 'Compress in transit'
            cand --compress 'Compress in transit'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;list'= {
            cand --project 'Project (repeatable; default: gcloud''s core/project)'
            cand --filter 'Only VMs matching this Compute list filter (aggregatedList''s `filter`), e.g. labels.env=prod or "name eq web-.*"'
            cand --zone 'Only VMs in this zone (repeatable)'
            cand --format 'Output format'
            cand --key-file 'Private key whose publication is reported (default: ~/.ssh/google_compute_engine)'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand --all-projects 'Every active project you can see (Cloud Resource Manager); projects without the Compute Engine API or access to it are skipped'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;doctor'= {
            cand --project 'Project (default: from NAME.ZONE.PROJECT, else gcloud''s core/project)'
            cand --zone 'Zone (default: from NAME.ZONE.PROJECT, gcloud''s compute/zone, else looked up)'
            cand --port 'Port to check'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand --fix 'Apply the fixes that can be applied (a firewall rule for IAP''s range, the tunnel role on this VM and port), each after a yes'
            cand --yes 'With --fix: do not ask'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;proxy'= {
            cand --project 'Project id (default: from NAME.ZONE.PROJECT, else CLOUDSDK_CORE_PROJECT)'
            cand --zone 'Zone of the VM (default: from NAME.ZONE.PROJECT, else CLOUDSDK_COMPUTE_ZONE)'
            cand --interface 'Network interface of the VM'
            cand --region 'Region of a host target (an IP or FQDN reached through an IAP destination group)'
            cand --network 'VPC network of a host target'
            cand --dest-group 'IAP destination group of a host target'
            cand --reconnect-window 'How long to keep trying to resume a dropped session, in seconds'
            cand --stall-timeout 'Resume the session when the connection to the relay is dead for this long (TCP keepalive, unacknowledged TCP data), or when the send window is full and the relay confirms nothing for this long, in seconds'
            cand --keepalive 'Send a keepalive after this many idle seconds (0: never)'
            cand --connect-timeout 'Give up opening a WebSocket (handshake plus the relay''s first message, one budget) after this many seconds'
            cand --wait 'While the VM is not ready (booting: close 4003 or 4047, HTTP 429 or 5xx on the upgrade), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Never for a refusal (4033) or a bad request. Default: fail at once'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;forward'= {
            cand --project 'Project id (default: from NAME.ZONE.PROJECT, else CLOUDSDK_CORE_PROJECT)'
            cand --zone 'Zone of the VM (default: from NAME.ZONE.PROJECT, else CLOUDSDK_COMPUTE_ZONE)'
            cand --interface 'Network interface of the VM'
            cand --region 'Region of a host target (an IP or FQDN reached through an IAP destination group)'
            cand --network 'VPC network of a host target'
            cand --dest-group 'IAP destination group of a host target'
            cand --reconnect-window 'How long to keep trying to resume a dropped session, in seconds'
            cand --stall-timeout 'Resume the session when the connection to the relay is dead for this long (TCP keepalive, unacknowledged TCP data), or when the send window is full and the relay confirms nothing for this long, in seconds'
            cand --keepalive 'Send a keepalive after this many idle seconds (0: never)'
            cand --connect-timeout 'Give up opening a WebSocket (handshake plus the relay''s first message, one budget) after this many seconds'
            cand --wait 'While the VM is not ready (booting: close 4003 or 4047, HTTP 429 or 5xx on the upgrade), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Never for a refusal (4033) or a bad request. Default: fail at once'
            cand --local-host-port 'Local address to listen on (port 0 or none: pick a free port)'
            cand -L 'Another forward, `[BIND:]LOCAL_PORT:INSTANCE:PORT` (repeatable; INSTANCE may be NAME.ZONE.PROJECT)'
            cand --max-handshakes 'Most relay handshakes at once; further accepted connections wait their turn (a burst does not hit the relay''s rate limit)'
            cand --shutdown-grace 'Seconds open connections get to finish after SIGINT/SIGTERM'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand --no-connection-check 'Skip opening one test session per forward before listening'
            cand --json 'Print the ready line as JSON with every bound address'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;rdp'= {
            cand --project 'Project (default: from NAME.ZONE.PROJECT, else gcloud''s core/project)'
            cand --zone 'Zone (default: from NAME.ZONE.PROJECT, gcloud''s compute/zone, else looked up)'
            cand --user 'Windows account (default: from your account''s email, as gcloud derives it, at most 20 characters)'
            cand --password-file 'With --reset-password: write the password to this file (0600) instead of showing it'
            cand --password-timeout 'How long to wait for the guest agent''s answer, in seconds'
            cand --local-host-port 'Local address for the tunnel (port 0: a free one)'
            cand --rdp-file 'Where to write the .rdp file (default: in iap-ssh''s cache folder)'
            cand --port 'Port of the RDP server on the VM'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand --reset-password 'Create the account, or reset its password, through the guest agent and show the new password once. Resetting an existing account''s password loses what Windows encrypted with the old one (EFS)'
            cand --no-launch 'Do not start an RDP client; forward until Ctrl-C'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;grant'= {
            cand --project 'Project whose tunnels are granted (default: gcloud''s core/project)'
            cand --zone 'Only VMs in this zone'
            cand --instance 'Only this VM (needs --zone)'
            cand --region 'Region of a destination group (with --dest-group)'
            cand --dest-group 'A destination group (hosts outside Compute Engine; with --region)'
            cand --member 'Who: user:EMAIL, group:EMAIL, serviceAccount:EMAIL, domain:DOMAIN, principal://... or principalSet://... (repeatable)'
            cand --port 'Only to this destination port (repeatable: any of them)'
            cand --ip 'Only to this destination IP (repeatable: any of them)'
            cand --access-level 'Only from devices in this access level, accessPolicies/N/accessLevels/NAME (repeatable: any of them)'
            cand --expires 'Until when: a duration (8h, 7d, 2w) from now or an RFC 3339 time (2027-01-01T00:00:00Z)'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand --remove 'Take the grant away instead (the binding with the same condition)'
            cand --list 'Show who can reach what (project, zone and VM level grants)'
            cand --dry-run 'Print the policy change; write nothing'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;oslogin-cert'= {
            cand --project 'project'
            cand --zone 'zone'
            cand --instance 'instance'
            cand --instance-id 'instance-id'
            cand --service-account 'The VM''s service account (sent with the signing request)'
            cand --key-file 'The private key whose public half is certified'
            cand --cert-file 'Where the certificate is kept'
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;completions'= {
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;man'= {
            cand --impersonate-service-account 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account'
            cand -v 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand --verbose 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
            cand -q 'Only errors on stderr (no progress, summaries or notices)'
            cand --quiet 'Only errors on stderr (no progress, summaries or notices)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'iap-ssh;help'= {
            cand setup 'Publish your SSH key and write Host blocks so plain `ssh VM` works'
            cand ssh 'Run ssh to a VM through IAP (no setup needed)'
            cand scp 'Copy files to or from a VM with scp through IAP (no setup needed)'
            cand list 'List VMs with their alias, zone, status, user and where your key is'
            cand doctor 'Check everything a tunnel to a VM needs and say how to fix what is missing'
            cand proxy 'Carry stdin/stdout to a VM port through IAP (an OpenSSH ProxyCommand)'
            cand forward 'Forward local TCP ports to VM ports through IAP (RDP, databases, ...)'
            cand rdp 'RDP to a Windows VM through IAP; --reset-password creates or resets the Windows account'
            cand grant 'Grant or remove IAP tunnel access (roles/iap.tunnelResourceAccessor) on a project, zone or VM'
            cand oslogin-cert 'Renew an OS Login certificate when it runs low (ssh runs this from the config setup wrote)'
            cand completions 'Print a shell completion script'
            cand man 'Print the man page (roff)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'iap-ssh;help;setup'= {
        }
        &'iap-ssh;help;ssh'= {
        }
        &'iap-ssh;help;scp'= {
        }
        &'iap-ssh;help;list'= {
        }
        &'iap-ssh;help;doctor'= {
        }
        &'iap-ssh;help;proxy'= {
        }
        &'iap-ssh;help;forward'= {
        }
        &'iap-ssh;help;rdp'= {
        }
        &'iap-ssh;help;grant'= {
        }
        &'iap-ssh;help;oslogin-cert'= {
        }
        &'iap-ssh;help;completions'= {
        }
        &'iap-ssh;help;man'= {
        }
        &'iap-ssh;help;help'= {
        }
    ]
    $completions[$command]
}
