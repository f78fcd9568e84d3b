package devcluster

import "testing"

// TestAgentNetLeases: two dev clusters never share agent addresses, and a
// work dir gets its block back once it is free.
func TestAgentNetLeases(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := leaseAgentNet(dirA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := leaseAgentNet(dirB)
	if err != nil {
		t.Fatal(err)
	}
	if a.block == b.block || a.Address(1) == b.Address(1) {
		t.Fatalf("two leases share block %d", a.block)
	}
	if got := a.Address(255); got != "127."+itoa(a.block)+".1.1" {
		t.Fatalf("agent 255's address %s", got)
	}
	first := a.block
	a.release()
	again, err := leaseAgentNet(dirA)
	if err != nil {
		t.Fatal(err)
	}
	defer again.release()
	defer b.release()
	if again.block != first {
		t.Fatalf("the work dir got block %d back; want its old %d", again.block, first)
	}
}
