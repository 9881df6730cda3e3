package prober

// tally counts a probe's consecutive results, as the kubelet's worker: a
// verdict changes only once successThreshold successes, or failureThreshold
// failures, came in a row.
type tally struct {
	// known is false until the first result.
	known bool
	last  bool
	run   int32
}

// add counts one result and reports whether the run it is part of reached
// its threshold: verdict is then result, and decided is true.
func (t *tally) add(success bool, successThreshold, failureThreshold int32) (decided bool) {
	if t.known && t.last == success {
		t.run++
	} else {
		t.known, t.last, t.run = true, success, 1
	}
	if success {
		return t.run >= max(successThreshold, 1)
	}
	return t.run >= max(failureThreshold, 1)
}
