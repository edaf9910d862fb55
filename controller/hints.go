package controller

import (
	"fmt"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// refusedNote says what to do when most of a run's requests were refused:
// nothing listened where the plan points, which a new user meets first
// (the target not started, or on another port). "" otherwise.
func refusedNote(sum *surgev1.RunSummary, p *plan.Plan) string {
	all := sum.GetAll()
	refused := all.GetErrors()["refused"]
	if refused == 0 || 2*refused < all.GetRequests() {
		return ""
	}
	where := "the plan's URLs"
	if p != nil && p.BaseURL != "" {
		where = "the plan's base_url " + p.BaseURL
	}
	return fmt.Sprintf("%d of %d requests were refused: nothing listened at %s; start the target there, "+
		"or point the plan elsewhere with surge run --base-url", refused, all.GetRequests(), where)
}
