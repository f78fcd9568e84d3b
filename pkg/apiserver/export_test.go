package apiserver

import "time"

// SetAdmitRetryBudget shortens how long applies that keep losing races are
// retried, for a test; the returned func restores it.
func SetAdmitRetryBudget(d time.Duration) (restore func()) {
	old := admitRetryBudget
	admitRetryBudget = d
	return func() { admitRetryBudget = old }
}
