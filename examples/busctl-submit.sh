#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A shell client with busctl: Submit a job, Wait for it without busctl's 25 s limit, read its output.
set -euo pipefail

dest=org.procpool.Supervisor1
manager=/org/procpool/Supervisor1

# Submit(as argv, a{sv} options): argv is 3 strings, then 1 option, "label" of type s.
reply=$(busctl --user -- call "$dest" $manager org.procpool.Supervisor1 Submit 'asa{sv}' \
        3 sh -c 'printf "hi\n"; printf "oops" >&2; exit 5' \
        1 label s "busctl example")
# The reply reads: o "/org/procpool/Supervisor1/job/N"
job=$(echo "$reply" | sed -n 's/^o "\(.*\)"$/\1/p')
[ -n "$job" ] || { echo "Submit answered: $reply" >&2; exit 1; }
echo "submitted $job"

# Wait answers when the job ends, however long that takes: no timeout.
rc=$(busctl --user --timeout=infinity call "$dest" "$job" org.procpool.Job1 Wait)
[ "$rc" = "i 5" ] || { echo "Wait answered: $rc" >&2; exit 1; }

state=$(busctl --user get-property "$dest" "$job" org.procpool.Job1 State)
[ "$state" = 's "exited"' ] || { echo "State: $state" >&2; exit 1; }

# GetOutput() -> (ay stdout, ay stderr): "ayay", then each array as its length and its bytes in decimal.
output=$(busctl --user call "$dest" "$job" org.procpool.Job1 GetOutput)
[ "$output" = "ayay 3 104 105 10 4 111 111 112 115" ] || { echo "GetOutput answered: $output" >&2; exit 1; }

busctl --user call "$dest" "$job" org.procpool.Job1 Release
echo "job ended with 5, output as expected"
