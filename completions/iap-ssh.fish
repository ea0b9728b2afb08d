# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_iap_ssh_global_optspecs
    string join \n v/verbose q/quiet impersonate-service-account= h/help V/version
end

function __fish_iap_ssh_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_iap_ssh_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_iap_ssh_using_subcommand
    set -l cmd (__fish_iap_ssh_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "setup" -d 'Publish your SSH key and write Host blocks so plain `ssh VM` works'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "ssh" -d 'Run ssh to a VM through IAP (no setup needed)'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "scp" -d 'Copy files to or from a VM with scp through IAP (no setup needed)'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "list" -d 'List VMs with their alias, zone, status, user and where your key is'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "doctor" -d 'Check everything a tunnel to a VM needs and say how to fix what is missing'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "proxy" -d 'Carry stdin/stdout to a VM port through IAP (an OpenSSH ProxyCommand)'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "forward" -d 'Forward local TCP ports to VM ports through IAP (RDP, databases, ...)'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "rdp" -d 'RDP to a Windows VM through IAP; --reset-password creates or resets the Windows account'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "grant" -d 'Grant or remove IAP tunnel access (roles/iap.tunnelResourceAccessor) on a project, zone or VM'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "oslogin-cert" -d 'Renew an OS Login certificate when it runs low (ssh runs this from the config setup wrote)'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c iap-ssh -n "__fish_iap_ssh_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l project -d 'Project (repeatable; default: gcloud\'s core/project)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l filter -d 'Only VMs matching this Compute list filter (aggregatedList\'s `filter`), e.g. labels.env=prod or "name eq web-.*"' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l zone -d 'Only VMs in this zone (repeatable)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l key-file -d 'Private key to use or create (default: ~/.ssh/google_compute_engine, shared with gcloud)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l ssh-config -d 'ssh config file to write the managed section into (default: ~/.ssh/config)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l known-hosts -d 'Known-hosts file for VM host keys (default: ~/.ssh/google_compute_known_hosts, shared with gcloud)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l user -d 'User name for metadata keys (default: your local login name; OS Login VMs use your OS Login user)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l key-ttl -d 'Lifetime of the published key: 30d, 12h, ... or `never`; a re-run renews it when a quarter is left' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l exe -d 'iap-ssh executable to write into ProxyCommand lines (default: the path you ran it by, e.g. a symlink that survives upgrades)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l control-master -d 'Share one connection per VM (ssh\'s ControlMaster), kept open this long after the last session: 10m (the default), 90s, 1h, or `yes` (until `ssh -O exit`); sockets in ~/.ssh/iap-ssh/' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l putty-reg -d 'With --putty: the same sessions as a Windows registry file' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l all-projects -d 'Every active project you can see (Cloud Resource Manager); projects without the Compute Engine API or access to it are skipped'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l dry-run -d 'Print what would change (a diff and the keys to publish) and change nothing'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l remove -d 'Remove the managed section from the ssh config (no API calls)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l internal-ip -d 'Write the VMs\' internal IPs (HostName) instead of IAP tunnels, for use from inside the VPC or over a VPN; VMs created later still go through IAP'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -l putty -d 'Also write the key as a PuTTY .ppk (KEY.ppk) and one PuTTY saved session per VM (plink -load VM), host keys pinned'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand setup" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l project -d 'Project (default: from NAME.ZONE.PROJECT, else gcloud\'s core/project)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l zone -d 'Zone (default: from NAME.ZONE.PROJECT, gcloud\'s compute/zone, else looked up)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l key-file -d 'Private key (default: ~/.ssh/google_compute_engine; created when missing)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l known-hosts -d 'Known-hosts file (default: ~/.ssh/google_compute_known_hosts)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l key-ttl -d 'Lifetime of a key published by this command: 30d, 12h, ... or `never`' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l port -d 'Port on the VM' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l wait -d 'While the VM is booting (status PROVISIONING or STAGING, then close 4003/4047 until sshd listens), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Default: fail at once' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l dry-run -d 'Print the command (shell-quoted, ready to paste) and change nothing'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l internal-ip -d 'Connect to the VM\'s internal IP directly, without IAP (you are on its VPC network or a VPN into it); keys, user and host-key pinning stay the same'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l print-rsh -d 'Print an ssh command for `rsync -e "$(iap-ssh ssh --print-rsh VM)"` and exit'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -l putty -d 'Run PuTTY\'s plink instead of ssh (the key as KEY.ppk, host keys pinned with -hostkey, the tunnel as -proxycmd)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand ssh" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l project -d 'Project (default: from NAME.ZONE.PROJECT, else gcloud\'s core/project)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l zone -d 'Zone (default: from NAME.ZONE.PROJECT, gcloud\'s compute/zone, else looked up)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l key-file -d 'Private key (default: ~/.ssh/google_compute_engine; created when missing)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l known-hosts -d 'Known-hosts file (default: ~/.ssh/google_compute_known_hosts)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l key-ttl -d 'Lifetime of a key published by this command: 30d, 12h, ... or `never`' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l port -d 'Port on the VM' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l wait -d 'While the VM is booting (status PROVISIONING or STAGING, then close 4003/4047 until sshd listens), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Default: fail at once' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l scp-flag -d 'Extra scp flag (repeatable), e.g. --scp-flag=-O' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l dry-run -d 'Print the command (shell-quoted, ready to paste) and change nothing'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -l internal-ip -d 'Connect to the VM\'s internal IP directly, without IAP (you are on its VPC network or a VPN into it); keys, user and host-key pinning stay the same'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -s r -l recurse -d 'Copy directories recursively'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -s C -l compress -d 'Compress in transit'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand scp" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -l project -d 'Project (repeatable; default: gcloud\'s core/project)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -l filter -d 'Only VMs matching this Compute list filter (aggregatedList\'s `filter`), e.g. labels.env=prod or "name eq web-.*"' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -l zone -d 'Only VMs in this zone (repeatable)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -l key-file -d 'Private key whose publication is reported (default: ~/.ssh/google_compute_engine)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -l all-projects -d 'Every active project you can see (Cloud Resource Manager); projects without the Compute Engine API or access to it are skipped'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand list" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -l project -d 'Project (default: from NAME.ZONE.PROJECT, else gcloud\'s core/project)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -l zone -d 'Zone (default: from NAME.ZONE.PROJECT, gcloud\'s compute/zone, else looked up)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -l port -d 'Port to check' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -l fix -d 'Apply the fixes that can be applied (a firewall rule for IAP\'s range, the tunnel role on this VM and port), each after a yes'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -l yes -d 'With --fix: do not ask'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l project -d 'Project id (default: from NAME.ZONE.PROJECT, else CLOUDSDK_CORE_PROJECT)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l zone -d 'Zone of the VM (default: from NAME.ZONE.PROJECT, else CLOUDSDK_COMPUTE_ZONE)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l interface -d 'Network interface of the VM' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l region -d 'Region of a host target (an IP or FQDN reached through an IAP destination group)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l network -d 'VPC network of a host target' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l dest-group -d 'IAP destination group of a host target' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l reconnect-window -d 'How long to keep trying to resume a dropped session, in seconds' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l stall-timeout -d 'Resume the session when the connection to the relay is dead for this long (TCP keepalive, unacknowledged TCP data), or when the send window is full and the relay confirms nothing for this long, in seconds' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l keepalive -d 'Send a keepalive after this many idle seconds (0: never)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l connect-timeout -d 'Give up opening a WebSocket (handshake plus the relay\'s first message, one budget) after this many seconds' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l wait -d 'While the VM is not ready (booting: close 4003 or 4047, HTTP 429 or 5xx on the upgrade), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Never for a refusal (4033) or a bad request. Default: fail at once' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand proxy" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l project -d 'Project id (default: from NAME.ZONE.PROJECT, else CLOUDSDK_CORE_PROJECT)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l zone -d 'Zone of the VM (default: from NAME.ZONE.PROJECT, else CLOUDSDK_COMPUTE_ZONE)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l interface -d 'Network interface of the VM' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l region -d 'Region of a host target (an IP or FQDN reached through an IAP destination group)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l network -d 'VPC network of a host target' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l dest-group -d 'IAP destination group of a host target' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l reconnect-window -d 'How long to keep trying to resume a dropped session, in seconds' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l stall-timeout -d 'Resume the session when the connection to the relay is dead for this long (TCP keepalive, unacknowledged TCP data), or when the send window is full and the relay confirms nothing for this long, in seconds' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l keepalive -d 'Send a keepalive after this many idle seconds (0: never)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l connect-timeout -d 'Give up opening a WebSocket (handshake plus the relay\'s first message, one budget) after this many seconds' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l wait -d 'While the VM is not ready (booting: close 4003 or 4047, HTTP 429 or 5xx on the upgrade), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Never for a refusal (4033) or a bad request. Default: fail at once' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l local-host-port -d 'Local address to listen on (port 0 or none: pick a free port)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -s L -d 'Another forward, `[BIND:]LOCAL_PORT:INSTANCE:PORT` (repeatable; INSTANCE may be NAME.ZONE.PROJECT)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l max-handshakes -d 'Most relay handshakes at once; further accepted connections wait their turn (a burst does not hit the relay\'s rate limit)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l shutdown-grace -d 'Seconds open connections get to finish after SIGINT/SIGTERM' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l no-connection-check -d 'Skip opening one test session per forward before listening'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -l json -d 'Print the ready line as JSON with every bound address'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand forward" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l project -d 'Project (default: from NAME.ZONE.PROJECT, else gcloud\'s core/project)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l zone -d 'Zone (default: from NAME.ZONE.PROJECT, gcloud\'s compute/zone, else looked up)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l user -d 'Windows account (default: from your account\'s email, as gcloud derives it, at most 20 characters)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l password-file -d 'With --reset-password: write the password to this file (0600) instead of showing it' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l password-timeout -d 'How long to wait for the guest agent\'s answer, in seconds' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l local-host-port -d 'Local address for the tunnel (port 0: a free one)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l rdp-file -d 'Where to write the .rdp file (default: in iap-ssh\'s cache folder)' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l port -d 'Port of the RDP server on the VM' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l reset-password -d 'Create the account, or reset its password, through the guest agent and show the new password once. Resetting an existing account\'s password loses what Windows encrypted with the old one (EFS)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -l no-launch -d 'Do not start an RDP client; forward until Ctrl-C'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand rdp" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l project -d 'Project whose tunnels are granted (default: gcloud\'s core/project)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l zone -d 'Only VMs in this zone' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l instance -d 'Only this VM (needs --zone)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l region -d 'Region of a destination group (with --dest-group)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l dest-group -d 'A destination group (hosts outside Compute Engine; with --region)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l member -d 'Who: user:EMAIL, group:EMAIL, serviceAccount:EMAIL, domain:DOMAIN, principal://... or principalSet://... (repeatable)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l port -d 'Only to this destination port (repeatable: any of them)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l ip -d 'Only to this destination IP (repeatable: any of them)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l access-level -d 'Only from devices in this access level, accessPolicies/N/accessLevels/NAME (repeatable: any of them)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l expires -d 'Until when: a duration (8h, 7d, 2w) from now or an RFC 3339 time (2027-01-01T00:00:00Z)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l remove -d 'Take the grant away instead (the binding with the same condition)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l list -d 'Show who can reach what (project, zone and VM level grants)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -l dry-run -d 'Print the policy change; write nothing'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand grant" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -l project -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -l zone -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -l instance -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -l instance-id -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -l service-account -d 'The VM\'s service account (sent with the signing request)' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -l key-file -d 'The private key whose public half is certified' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -l cert-file -d 'Where the certificate is kept' -r -F
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand oslogin-cert" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand completions" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand completions" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand completions" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand completions" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand man" -l impersonate-service-account -d 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud\'s auth/impersonate_service_account' -r
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand man" -s v -l verbose -d 'More detail on stderr (-v info, -vv debug). Tokens are never shown'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand man" -s q -l quiet -d 'Only errors on stderr (no progress, summaries or notices)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand man" -s h -l help -d 'Print help'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand man" -s V -l version -d 'Print version'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "setup" -d 'Publish your SSH key and write Host blocks so plain `ssh VM` works'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "ssh" -d 'Run ssh to a VM through IAP (no setup needed)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "scp" -d 'Copy files to or from a VM with scp through IAP (no setup needed)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "list" -d 'List VMs with their alias, zone, status, user and where your key is'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "doctor" -d 'Check everything a tunnel to a VM needs and say how to fix what is missing'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "proxy" -d 'Carry stdin/stdout to a VM port through IAP (an OpenSSH ProxyCommand)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "forward" -d 'Forward local TCP ports to VM ports through IAP (RDP, databases, ...)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "rdp" -d 'RDP to a Windows VM through IAP; --reset-password creates or resets the Windows account'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "grant" -d 'Grant or remove IAP tunnel access (roles/iap.tunnelResourceAccessor) on a project, zone or VM'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "oslogin-cert" -d 'Renew an OS Login certificate when it runs low (ssh runs this from the config setup wrote)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "man" -d 'Print the man page (roff)'
complete -c iap-ssh -n "__fish_iap_ssh_using_subcommand help; and not __fish_seen_subcommand_from setup ssh scp list doctor proxy forward rdp grant oslogin-cert completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
