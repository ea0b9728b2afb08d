
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'iap-ssh' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'iap-ssh'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'iap-ssh' {
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('setup', 'setup', [CompletionResultType]::ParameterValue, 'Publish your SSH key and write Host blocks so plain `ssh VM` works')
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Run ssh to a VM through IAP (no setup needed)')
            [CompletionResult]::new('scp', 'scp', [CompletionResultType]::ParameterValue, 'Copy files to or from a VM with scp through IAP (no setup needed)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List VMs with their alias, zone, status, user and where your key is')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check everything a tunnel to a VM needs and say how to fix what is missing')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'Carry stdin/stdout to a VM port through IAP (an OpenSSH ProxyCommand)')
            [CompletionResult]::new('forward', 'forward', [CompletionResultType]::ParameterValue, 'Forward local TCP ports to VM ports through IAP (RDP, databases, ...)')
            [CompletionResult]::new('rdp', 'rdp', [CompletionResultType]::ParameterValue, 'RDP to a Windows VM through IAP; --reset-password creates or resets the Windows account')
            [CompletionResult]::new('grant', 'grant', [CompletionResultType]::ParameterValue, 'Grant or remove IAP tunnel access (roles/iap.tunnelResourceAccessor) on a project, zone or VM')
            [CompletionResult]::new('oslogin-cert', 'oslogin-cert', [CompletionResultType]::ParameterValue, 'Renew an OS Login certificate when it runs low (ssh runs this from the config setup wrote)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'iap-ssh;setup' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project (repeatable; default: gcloud''s core/project)')
            [CompletionResult]::new('--filter', '--filter', [CompletionResultType]::ParameterName, 'Only VMs matching this Compute list filter (aggregatedList''s `filter`), e.g. labels.env=prod or "name eq web-.*"')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'Only VMs in this zone (repeatable)')
            [CompletionResult]::new('--key-file', '--key-file', [CompletionResultType]::ParameterName, 'Private key to use or create (default: ~/.ssh/google_compute_engine, shared with gcloud)')
            [CompletionResult]::new('--ssh-config', '--ssh-config', [CompletionResultType]::ParameterName, 'ssh config file to write the managed section into (default: ~/.ssh/config)')
            [CompletionResult]::new('--known-hosts', '--known-hosts', [CompletionResultType]::ParameterName, 'Known-hosts file for VM host keys (default: ~/.ssh/google_compute_known_hosts, shared with gcloud)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'User name for metadata keys (default: your local login name; OS Login VMs use your OS Login user)')
            [CompletionResult]::new('--key-ttl', '--key-ttl', [CompletionResultType]::ParameterName, 'Lifetime of the published key: 30d, 12h, ... or `never`; a re-run renews it when a quarter is left')
            [CompletionResult]::new('--exe', '--exe', [CompletionResultType]::ParameterName, 'iap-ssh executable to write into ProxyCommand lines (default: the path you ran it by, e.g. a symlink that survives upgrades)')
            [CompletionResult]::new('--control-master', '--control-master', [CompletionResultType]::ParameterName, 'Share one connection per VM (ssh''s ControlMaster), kept open this long after the last session: 10m (the default), 90s, 1h, or `yes` (until `ssh -O exit`); sockets in ~/.ssh/iap-ssh/')
            [CompletionResult]::new('--putty-reg', '--putty-reg', [CompletionResultType]::ParameterName, 'With --putty: the same sessions as a Windows registry file')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('--all-projects', '--all-projects', [CompletionResultType]::ParameterName, 'Every active project you can see (Cloud Resource Manager); projects without the Compute Engine API or access to it are skipped')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print what would change (a diff and the keys to publish) and change nothing')
            [CompletionResult]::new('--remove', '--remove', [CompletionResultType]::ParameterName, 'Remove the managed section from the ssh config (no API calls)')
            [CompletionResult]::new('--internal-ip', '--internal-ip', [CompletionResultType]::ParameterName, 'Write the VMs'' internal IPs (HostName) instead of IAP tunnels, for use from inside the VPC or over a VPN; VMs created later still go through IAP')
            [CompletionResult]::new('--putty', '--putty', [CompletionResultType]::ParameterName, 'Also write the key as a PuTTY .ppk (KEY.ppk) and one PuTTY saved session per VM (plink -load VM), host keys pinned')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;ssh' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project (default: from NAME.ZONE.PROJECT, else gcloud''s core/project)')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'Zone (default: from NAME.ZONE.PROJECT, gcloud''s compute/zone, else looked up)')
            [CompletionResult]::new('--key-file', '--key-file', [CompletionResultType]::ParameterName, 'Private key (default: ~/.ssh/google_compute_engine; created when missing)')
            [CompletionResult]::new('--known-hosts', '--known-hosts', [CompletionResultType]::ParameterName, 'Known-hosts file (default: ~/.ssh/google_compute_known_hosts)')
            [CompletionResult]::new('--key-ttl', '--key-ttl', [CompletionResultType]::ParameterName, 'Lifetime of a key published by this command: 30d, 12h, ... or `never`')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port on the VM')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'While the VM is booting (status PROVISIONING or STAGING, then close 4003/4047 until sshd listens), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Default: fail at once')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the command (shell-quoted, ready to paste) and change nothing')
            [CompletionResult]::new('--internal-ip', '--internal-ip', [CompletionResultType]::ParameterName, 'Connect to the VM''s internal IP directly, without IAP (you are on its VPC network or a VPN into it); keys, user and host-key pinning stay the same')
            [CompletionResult]::new('--print-rsh', '--print-rsh', [CompletionResultType]::ParameterName, 'Print an ssh command for `rsync -e "$(iap-ssh ssh --print-rsh VM)"` and exit')
            [CompletionResult]::new('--putty', '--putty', [CompletionResultType]::ParameterName, 'Run PuTTY''s plink instead of ssh (the key as KEY.ppk, host keys pinned with -hostkey, the tunnel as -proxycmd)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;scp' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project (default: from NAME.ZONE.PROJECT, else gcloud''s core/project)')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'Zone (default: from NAME.ZONE.PROJECT, gcloud''s compute/zone, else looked up)')
            [CompletionResult]::new('--key-file', '--key-file', [CompletionResultType]::ParameterName, 'Private key (default: ~/.ssh/google_compute_engine; created when missing)')
            [CompletionResult]::new('--known-hosts', '--known-hosts', [CompletionResultType]::ParameterName, 'Known-hosts file (default: ~/.ssh/google_compute_known_hosts)')
            [CompletionResult]::new('--key-ttl', '--key-ttl', [CompletionResultType]::ParameterName, 'Lifetime of a key published by this command: 30d, 12h, ... or `never`')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port on the VM')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'While the VM is booting (status PROVISIONING or STAGING, then close 4003/4047 until sshd listens), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Default: fail at once')
            [CompletionResult]::new('--scp-flag', '--scp-flag', [CompletionResultType]::ParameterName, 'Extra scp flag (repeatable), e.g. --scp-flag=-O')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the command (shell-quoted, ready to paste) and change nothing')
            [CompletionResult]::new('--internal-ip', '--internal-ip', [CompletionResultType]::ParameterName, 'Connect to the VM''s internal IP directly, without IAP (you are on its VPC network or a VPN into it); keys, user and host-key pinning stay the same')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Copy directories recursively')
            [CompletionResult]::new('--recurse', '--recurse', [CompletionResultType]::ParameterName, 'Copy directories recursively')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Compress in transit')
            [CompletionResult]::new('--compress', '--compress', [CompletionResultType]::ParameterName, 'Compress in transit')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;list' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project (repeatable; default: gcloud''s core/project)')
            [CompletionResult]::new('--filter', '--filter', [CompletionResultType]::ParameterName, 'Only VMs matching this Compute list filter (aggregatedList''s `filter`), e.g. labels.env=prod or "name eq web-.*"')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'Only VMs in this zone (repeatable)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--key-file', '--key-file', [CompletionResultType]::ParameterName, 'Private key whose publication is reported (default: ~/.ssh/google_compute_engine)')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('--all-projects', '--all-projects', [CompletionResultType]::ParameterName, 'Every active project you can see (Cloud Resource Manager); projects without the Compute Engine API or access to it are skipped')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;doctor' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project (default: from NAME.ZONE.PROJECT, else gcloud''s core/project)')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'Zone (default: from NAME.ZONE.PROJECT, gcloud''s compute/zone, else looked up)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to check')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('--fix', '--fix', [CompletionResultType]::ParameterName, 'Apply the fixes that can be applied (a firewall rule for IAP''s range, the tunnel role on this VM and port), each after a yes')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'With --fix: do not ask')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;proxy' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project id (default: from NAME.ZONE.PROJECT, else CLOUDSDK_CORE_PROJECT)')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'Zone of the VM (default: from NAME.ZONE.PROJECT, else CLOUDSDK_COMPUTE_ZONE)')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Network interface of the VM')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'Region of a host target (an IP or FQDN reached through an IAP destination group)')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'VPC network of a host target')
            [CompletionResult]::new('--dest-group', '--dest-group', [CompletionResultType]::ParameterName, 'IAP destination group of a host target')
            [CompletionResult]::new('--reconnect-window', '--reconnect-window', [CompletionResultType]::ParameterName, 'How long to keep trying to resume a dropped session, in seconds')
            [CompletionResult]::new('--stall-timeout', '--stall-timeout', [CompletionResultType]::ParameterName, 'Resume the session when the connection to the relay is dead for this long (TCP keepalive, unacknowledged TCP data), or when the send window is full and the relay confirms nothing for this long, in seconds')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Send a keepalive after this many idle seconds (0: never)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up opening a WebSocket (handshake plus the relay''s first message, one budget) after this many seconds')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'While the VM is not ready (booting: close 4003 or 4047, HTTP 429 or 5xx on the upgrade), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Never for a refusal (4033) or a bad request. Default: fail at once')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;forward' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project id (default: from NAME.ZONE.PROJECT, else CLOUDSDK_CORE_PROJECT)')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'Zone of the VM (default: from NAME.ZONE.PROJECT, else CLOUDSDK_COMPUTE_ZONE)')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Network interface of the VM')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'Region of a host target (an IP or FQDN reached through an IAP destination group)')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'VPC network of a host target')
            [CompletionResult]::new('--dest-group', '--dest-group', [CompletionResultType]::ParameterName, 'IAP destination group of a host target')
            [CompletionResult]::new('--reconnect-window', '--reconnect-window', [CompletionResultType]::ParameterName, 'How long to keep trying to resume a dropped session, in seconds')
            [CompletionResult]::new('--stall-timeout', '--stall-timeout', [CompletionResultType]::ParameterName, 'Resume the session when the connection to the relay is dead for this long (TCP keepalive, unacknowledged TCP data), or when the send window is full and the relay confirms nothing for this long, in seconds')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Send a keepalive after this many idle seconds (0: never)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up opening a WebSocket (handshake plus the relay''s first message, one budget) after this many seconds')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'While the VM is not ready (booting: close 4003 or 4047, HTTP 429 or 5xx on the upgrade), keep trying for this long: 90 (seconds), 90s, 5m, 1h. Never for a refusal (4033) or a bad request. Default: fail at once')
            [CompletionResult]::new('--local-host-port', '--local-host-port', [CompletionResultType]::ParameterName, 'Local address to listen on (port 0 or none: pick a free port)')
            [CompletionResult]::new('-L', '-L ', [CompletionResultType]::ParameterName, 'Another forward, `[BIND:]LOCAL_PORT:INSTANCE:PORT` (repeatable; INSTANCE may be NAME.ZONE.PROJECT)')
            [CompletionResult]::new('--max-handshakes', '--max-handshakes', [CompletionResultType]::ParameterName, 'Most relay handshakes at once; further accepted connections wait their turn (a burst does not hit the relay''s rate limit)')
            [CompletionResult]::new('--shutdown-grace', '--shutdown-grace', [CompletionResultType]::ParameterName, 'Seconds open connections get to finish after SIGINT/SIGTERM')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('--no-connection-check', '--no-connection-check', [CompletionResultType]::ParameterName, 'Skip opening one test session per forward before listening')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the ready line as JSON with every bound address')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;rdp' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project (default: from NAME.ZONE.PROJECT, else gcloud''s core/project)')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'Zone (default: from NAME.ZONE.PROJECT, gcloud''s compute/zone, else looked up)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Windows account (default: from your account''s email, as gcloud derives it, at most 20 characters)')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'With --reset-password: write the password to this file (0600) instead of showing it')
            [CompletionResult]::new('--password-timeout', '--password-timeout', [CompletionResultType]::ParameterName, 'How long to wait for the guest agent''s answer, in seconds')
            [CompletionResult]::new('--local-host-port', '--local-host-port', [CompletionResultType]::ParameterName, 'Local address for the tunnel (port 0: a free one)')
            [CompletionResult]::new('--rdp-file', '--rdp-file', [CompletionResultType]::ParameterName, 'Where to write the .rdp file (default: in iap-ssh''s cache folder)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port of the RDP server on the VM')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('--reset-password', '--reset-password', [CompletionResultType]::ParameterName, 'Create the account, or reset its password, through the guest agent and show the new password once. Resetting an existing account''s password loses what Windows encrypted with the old one (EFS)')
            [CompletionResult]::new('--no-launch', '--no-launch', [CompletionResultType]::ParameterName, 'Do not start an RDP client; forward until Ctrl-C')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;grant' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project whose tunnels are granted (default: gcloud''s core/project)')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'Only VMs in this zone')
            [CompletionResult]::new('--instance', '--instance', [CompletionResultType]::ParameterName, 'Only this VM (needs --zone)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'Region of a destination group (with --dest-group)')
            [CompletionResult]::new('--dest-group', '--dest-group', [CompletionResultType]::ParameterName, 'A destination group (hosts outside Compute Engine; with --region)')
            [CompletionResult]::new('--member', '--member', [CompletionResultType]::ParameterName, 'Who: user:EMAIL, group:EMAIL, serviceAccount:EMAIL, domain:DOMAIN, principal://... or principalSet://... (repeatable)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Only to this destination port (repeatable: any of them)')
            [CompletionResult]::new('--ip', '--ip', [CompletionResultType]::ParameterName, 'Only to this destination IP (repeatable: any of them)')
            [CompletionResult]::new('--access-level', '--access-level', [CompletionResultType]::ParameterName, 'Only from devices in this access level, accessPolicies/N/accessLevels/NAME (repeatable: any of them)')
            [CompletionResult]::new('--expires', '--expires', [CompletionResultType]::ParameterName, 'Until when: a duration (8h, 7d, 2w) from now or an RFC 3339 time (2027-01-01T00:00:00Z)')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('--remove', '--remove', [CompletionResultType]::ParameterName, 'Take the grant away instead (the binding with the same condition)')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'Show who can reach what (project, zone and VM level grants)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the policy change; write nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;oslogin-cert' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'project')
            [CompletionResult]::new('--zone', '--zone', [CompletionResultType]::ParameterName, 'zone')
            [CompletionResult]::new('--instance', '--instance', [CompletionResultType]::ParameterName, 'instance')
            [CompletionResult]::new('--instance-id', '--instance-id', [CompletionResultType]::ParameterName, 'instance-id')
            [CompletionResult]::new('--service-account', '--service-account', [CompletionResultType]::ParameterName, 'The VM''s service account (sent with the signing request)')
            [CompletionResult]::new('--key-file', '--key-file', [CompletionResultType]::ParameterName, 'The private key whose public half is certified')
            [CompletionResult]::new('--cert-file', '--cert-file', [CompletionResultType]::ParameterName, 'Where the certificate is kept')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;completions' {
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;man' {
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Act as this service account (EMAIL), through IAM Credentials; with a comma-separated chain, the last is acted as and the others are delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then gcloud''s auth/impersonate_service_account')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v info, -vv debug). Tokens are never shown')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no progress, summaries or notices)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'iap-ssh;help' {
            [CompletionResult]::new('setup', 'setup', [CompletionResultType]::ParameterValue, 'Publish your SSH key and write Host blocks so plain `ssh VM` works')
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Run ssh to a VM through IAP (no setup needed)')
            [CompletionResult]::new('scp', 'scp', [CompletionResultType]::ParameterValue, 'Copy files to or from a VM with scp through IAP (no setup needed)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List VMs with their alias, zone, status, user and where your key is')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check everything a tunnel to a VM needs and say how to fix what is missing')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'Carry stdin/stdout to a VM port through IAP (an OpenSSH ProxyCommand)')
            [CompletionResult]::new('forward', 'forward', [CompletionResultType]::ParameterValue, 'Forward local TCP ports to VM ports through IAP (RDP, databases, ...)')
            [CompletionResult]::new('rdp', 'rdp', [CompletionResultType]::ParameterValue, 'RDP to a Windows VM through IAP; --reset-password creates or resets the Windows account')
            [CompletionResult]::new('grant', 'grant', [CompletionResultType]::ParameterValue, 'Grant or remove IAP tunnel access (roles/iap.tunnelResourceAccessor) on a project, zone or VM')
            [CompletionResult]::new('oslogin-cert', 'oslogin-cert', [CompletionResultType]::ParameterValue, 'Renew an OS Login certificate when it runs low (ssh runs this from the config setup wrote)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'iap-ssh;help;setup' {
            break
        }
        'iap-ssh;help;ssh' {
            break
        }
        'iap-ssh;help;scp' {
            break
        }
        'iap-ssh;help;list' {
            break
        }
        'iap-ssh;help;doctor' {
            break
        }
        'iap-ssh;help;proxy' {
            break
        }
        'iap-ssh;help;forward' {
            break
        }
        'iap-ssh;help;rdp' {
            break
        }
        'iap-ssh;help;grant' {
            break
        }
        'iap-ssh;help;oslogin-cert' {
            break
        }
        'iap-ssh;help;completions' {
            break
        }
        'iap-ssh;help;man' {
            break
        }
        'iap-ssh;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
