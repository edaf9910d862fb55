package report

import "fmt"

// checksText writes the run's checks, all together (k6's checks rate) and
// each request's by name, when the run made any.
func checksText(p *printer, sum *Summary) {
	if sum.ChecksPassed+sum.ChecksFailed == 0 {
		return
	}
	p.printf("\n")
	tw := p.table()
	tw.printf("CHECK\tREQUEST\tSCENARIO\tPASSES\tFAILS\tPASSED\n")
	tw.printf("  all\t\t\t%d\t%d\t%s\n", sum.ChecksPassed, sum.ChecksFailed, passed(sum.ChecksPassed, sum.ChecksFailed))
	for _, r := range sum.ByRequest {
		for _, c := range r.Checks {
			mark := "✓"
			if c.Fails > 0 {
				mark = "✗"
			}
			tw.printf("%s %s\t%s\t%s\t%d\t%d\t%s\n", mark, c.Name, r.Request, r.Scenario, c.Passes, c.Fails,
				passed(c.Passes, c.Fails))
		}
	}
	tw.flush()
}

// extractText writes the requests whose extractions failed: each such
// response ended its iteration, so the steps after it were not sent.
func extractText(p *printer, sum *Summary) {
	if sum.ExtractFailed == 0 {
		return
	}
	p.printf("\n")
	tw := p.table()
	tw.printf("EXTRACT FAILED\tREQUEST\tSCENARIO\tFLOW\n")
	for _, r := range sum.ByRequest {
		if r.ExtractFailed > 0 {
			tw.printf("  %d\t%s\t%s\t%s\n", r.ExtractFailed, r.Request, r.Scenario, r.Flow)
		}
	}
	tw.flush()
	p.printf("%d iterations ended at a failed extraction; their later steps were not sent.\n", sum.ExtractFailed)
}

// passed is the share of passes as a percentage, "-" without any checks.
func passed(passes, fails int64) string {
	if passes+fails == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(passes)/float64(passes+fails))
}
