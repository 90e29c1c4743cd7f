package evalstat

import "math"

// OrderBreak is one metric that does not rank a milder condition strictly
// above a harsher one.
type OrderBreak struct {
	Metric string  `json:"metric"`
	Better string  `json:"better"` // the condition that should score better
	Worse  string  `json:"worse"`
	BValue float64 `json:"better_value"`
	WValue float64 `json:"worse_value"`
}

// OrderBreaks checks, for every metric and every pair (better, worse) of
// conditions, that the metric ranks better strictly above worse: lower
// for the metrics in lowerIsBetter, higher for the others. values maps
// condition → metric → value; a missing or NaN value breaks the order.
// Metrics are checked in the order given, pairs in the order given.
func OrderBreaks(values map[string]map[string]float64, metrics []string, pairs [][2]string, lowerIsBetter map[string]bool) []OrderBreak {
	var res []OrderBreak
	for _, m := range metrics {
		for _, p := range pairs {
			b, okb := values[p[0]][m]
			w, okw := values[p[1]][m]
			good := okb && okw && !math.IsNaN(b) && !math.IsNaN(w)
			if good {
				if lowerIsBetter[m] {
					good = b < w
				} else {
					good = b > w
				}
			}
			if !good {
				res = append(res, OrderBreak{Metric: m, Better: p[0], Worse: p[1], BValue: b, WValue: w})
			}
		}
	}
	return res
}
