package cluster

import (
	"testing"

	"github.com/surgeload/surge/cluster/clustertest"
)

func TestMain(m *testing.M) {
	clustertest.VerifyTestMain(m)
}
