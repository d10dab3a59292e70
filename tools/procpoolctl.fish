# SPDX-License-Identifier: LGPL-2.1-or-later
# fish completion for procpoolctl: commands, options, signal names and job ids.

set -l __procpoolctl_commands call communicate submit wait list status output cancel kill pause resume restart release clean pool pool-size monitor daemon-reexec help map

# The options naming the bus, from the command line so far.
function __procpoolctl_bus_args
    set -l words (commandline -opc)
    set -l n (count $words)
    for i in (seq 2 $n)
        switch $words[$i]
            case --user --system '--address=*' '--host=*' '--machine=*'
                echo $words[$i]
            case -H -M --host --machine --address
                if test $i -lt $n
                    echo $words[$i]
                    echo $words[(math $i + 1)]
                end
        end
    end
end

# Job ids from procpoolctl itself, on the same bus; finished jobs too with --all.
function __procpoolctl_job_ids
    procpoolctl (__procpoolctl_bus_args) --no-legend --full list $argv 2>/dev/null | string replace -r ' .*' ''
end

# Pool names from procpoolctl itself, on the same bus.
function __procpoolctl_pools
    procpoolctl (__procpoolctl_bus_args) --no-legend pool list 2>/dev/null | string replace -r ' .*' ''
end

# Whether the command line is "pool" with no subcommand yet.
function __procpoolctl_pool_needs_sub
    set -l words (commandline -opc)
    contains -- pool $words; or return 1
    for w in list create remove size
        contains -- $w $words; and return 1
    end
    return 0
end

# Signal names, with SIG when that was typed.
function __procpoolctl_signals
    set -l token (commandline -ct | string replace -r '^--signal=' '')
    set -l prefix ''
    if string match -qi 'SIG*' -- $token
        set prefix SIG
    end
    for s in HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS
        echo $prefix$s
    end
end

complete -c procpoolctl -f
complete -c procpoolctl -n "not __fish_seen_subcommand_from $__procpoolctl_commands" -a "$__procpoolctl_commands"
complete -c procpoolctl -n "__fish_seen_subcommand_from help" -a "$__procpoolctl_commands"

# global options
complete -c procpoolctl -s h -l help -d 'Show the help'
complete -c procpoolctl -l version -d 'Show the version'
complete -c procpoolctl -l user -d 'Talk to procpoold on the session bus'
complete -c procpoolctl -l system -d 'Talk to procpoold on the system bus'
complete -c procpoolctl -s H -l host -x -a '(__fish_print_hostnames)' -d 'Talk to a remote host over SSH'
complete -c procpoolctl -s M -l machine -x -d 'Talk to a local container'
complete -c procpoolctl -l address -x -d 'Talk to the bus at this address'
complete -c procpoolctl -l bus -d 'Talk over the bus, not the private socket'
complete -c procpoolctl -l json -d 'Print JSON'
complete -c procpoolctl -l no-legend -d 'No header and footer in tables'
complete -c procpoolctl -s q -l quiet -d 'Print no progress'

# job options of call, communicate and submit
set -l __procpoolctl_run call communicate submit map
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l timeout -x -d 'Stop the job after this long'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l stop-timeout -x -d 'Grace between SIGTERM and SIGKILL'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -s E -l setenv -x -a '(set -n)' -d 'Set an environment variable'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l clear-env -d 'Start from an empty environment'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l cwd -x -a '(__fish_complete_directories)' -d 'Working directory'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l label -x -d 'Free text shown in list and status'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l priority -x -d 'Higher starts first'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l output-limit -x -d 'Bytes kept per captured stream'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l pool -x -a '(__procpoolctl_pools)' -d 'Run in this pool'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l after -x -a '(__procpoolctl_job_ids --all)' -d 'Start once these jobs exited 0'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l at -x -d 'Do not start before this time'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l retry -x -d 'Run a failed attempt again, this often at most'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -l retry-delay -x -d 'Wait this long before each retry'
complete -c procpoolctl -n "__fish_seen_subcommand_from submit" -l wait -d 'Wait for the job'
complete -c procpoolctl -n "__fish_seen_subcommand_from map" -l pool -x -d 'Run the jobs in this pool'
complete -c procpoolctl -n "__fish_seen_subcommand_from map" -l keep-order -d 'Print in the order of the lines'
complete -c procpoolctl -n "__fish_seen_subcommand_from map" -l joblog -r -F -d 'Write a GNU parallel job log'
complete -c procpoolctl -n "__fish_seen_subcommand_from map" -l halt-on-error -d 'Cancel the rest after a failed job'
complete -c procpoolctl -n "__fish_seen_subcommand_from $__procpoolctl_run" -F

# the commands' own options and arguments
complete -c procpoolctl -n "__fish_seen_subcommand_from kill" -s s -l signal -x -a '(__procpoolctl_signals)' -d 'The signal'
complete -c procpoolctl -n "__fish_seen_subcommand_from list status" -s a -l all -d 'Also finished jobs'
complete -c procpoolctl -n "__fish_seen_subcommand_from list status" -s l -l full -d 'Do not cut the command column'
complete -c procpoolctl -n "__fish_seen_subcommand_from output" -s f -l follow -d 'Follow until the job ends'
complete -c procpoolctl -n "__fish_seen_subcommand_from wait cancel kill pause resume" -x -a '(__procpoolctl_job_ids)'
complete -c procpoolctl -n "__fish_seen_subcommand_from status output release restart" -x -a '(__procpoolctl_job_ids --all)'
complete -c procpoolctl -n "__fish_seen_subcommand_from list pause resume" -l pool -x -a '(__procpoolctl_pools)' -d 'The pool'
complete -c procpoolctl -n "__fish_seen_subcommand_from clean" -l failed-only -d 'Only jobs that did not exit 0'
complete -c procpoolctl -n "__procpoolctl_pool_needs_sub" -x -a 'list create remove size'
complete -c procpoolctl -n "__fish_seen_subcommand_from pool; and __fish_seen_subcommand_from remove size" -x -a '(__procpoolctl_pools)'
complete -c procpoolctl -n "__fish_seen_subcommand_from pool; and __fish_seen_subcommand_from create" -l size -x -d 'Jobs at once'
complete -c procpoolctl -n "__fish_seen_subcommand_from pool; and __fish_seen_subcommand_from create" -l executor -x -a 'local slurm' -d 'Where its jobs run'
complete -c procpoolctl -n "__fish_seen_subcommand_from pool; and __fish_seen_subcommand_from create" -l slurm-conf -r -F -d "The Slurm cluster's slurm.conf"
complete -c procpoolctl -n "__fish_seen_subcommand_from pool; and __fish_seen_subcommand_from create" -l partition -x -d 'The Slurm partition its jobs run in'
