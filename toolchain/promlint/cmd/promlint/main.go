// Command promlint checks a Prometheus text exposition (what a /metrics endpoint serves) with
// Prometheus' own code: github.com/prometheus/common/expfmt's TextParser (the parser Prometheus'
// scrape of the text format and promtool use) and client_golang's testutil/promlint (what
// `promtool check metrics` runs, in
// https://github.com/prometheus/prometheus/blob/main/cmd/promtool/main.go).
//
// Reads the exposition on stdin; prints one JSON object on stdout:
//
//	{"families": <number of metric families>, "problems": [{"metric": "...", "text": "..."}]}
//
// Exit status: 0 when it parses (problems or not), 1 on a parse error (printed as
// {"error": "..."}), 2 on an I/O error. Deciding which problems matter is the caller's job.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type problem struct {
	Metric string `json:"metric"`
	Text   string `json:"text"`
}

type report struct {
	Families int       `json:"families"`
	Problems []problem `json:"problems"`
}

func main() {
	// Text format 0.0.4 allows only legacy names ([a-zA-Z_:][a-zA-Z0-9_:]*); common's default is
	// UTF-8, which would also accept quoted names a Prometheus 2 server rejects.
	model.NameValidationScheme = model.LegacyValidation

	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(os.Stdin)
	if err != nil {
		emit(map[string]string{"error": err.Error()})
		os.Exit(1)
	}
	list := make([]*dto.MetricFamily, 0, len(families))
	for _, mf := range families {
		list = append(list, mf)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].GetName() < list[j].GetName() })
	found, err := promlint.NewWithMetricFamilies(list).Lint()
	if err != nil {
		emit(map[string]string{"error": err.Error()})
		os.Exit(1)
	}
	out := report{Families: len(list), Problems: make([]problem, 0, len(found))}
	for _, p := range found {
		out.Problems = append(out.Problems, problem{Metric: p.Metric, Text: p.Text})
	}
	emit(out)
}

func emit(v any) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, "promlint:", err)
		os.Exit(2)
	}
}
