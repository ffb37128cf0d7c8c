// Package bisect pins the deltas no kernel states (trampoline.Deltas) to
// the served kernel builds that bracket them. A build is judged by its
// recordings: replayed on the model with the delta on and with it off,
// exactly one of the two must agree with the kernel (Judge). The builds
// are searched one stable branch at a time (Search), because a change
// taken into stable reaches each branch at its own release: versions
// order builds within a branch, not across branches.
package bisect
