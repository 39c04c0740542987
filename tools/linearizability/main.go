// Command linearizability checks a synthetic client fleet's history of a switch for per-key
// linearizability with Porcupine: every item is a register, written with the fleet's counter n
// and read back as it. It reads the history as JSON (a file argument, or stdin) and prints one
// JSON verdict; exit status 0 linearizable, 1 a violation or an inconclusive check, 2 bad input.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// operation is one request of the history. Return is null for a write whose outcome is unknown
// (no answer): it may take effect at any time after its call.
type operation struct {
	Client int    `json:"client"`
	Key    string `json:"key"`
	Kind   string `json:"kind"`
	Value  int64  `json:"value"`
	Rev    string `json:"rev"` // informational: the register holds the fleet's counter, not the revision
	Call   int64  `json:"call"`
	Return *int64 `json:"return"`
}

type history struct {
	// StartedAt is the wall-clock time of the history's zero (informational).
	StartedAt  string      `json:"startedAt"`
	Operations []operation `json:"operations"`
}

type verdict struct {
	OK         bool     `json:"ok"`
	Result     string   `json:"result"`
	Operations int      `json:"operations"`
	Keys       int      `json:"keys"`
	Violations []string `json:"violations"`
	Unknown    []string `json:"unknown"`
}

type input struct {
	write bool
	value int64
}

// register: the state is the last value written (0: never written).
var register = porcupine.Model{
	Init: func() interface{} { return int64(0) },
	Step: func(state, in, out interface{}) (bool, interface{}) {
		op := in.(input)
		if op.write {
			return true, op.value
		}
		return out.(int64) == state.(int64), state
	},
	Equal: func(a, b interface{}) bool { return a.(int64) == b.(int64) },
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "linearizability: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	var source io.Reader = os.Stdin
	if len(os.Args) > 2 {
		fail("usage: linearizability [HISTORY.json]")
	}
	if len(os.Args) == 2 {
		file, err := os.Open(os.Args[1])
		if err != nil {
			fail("%v", err)
		}
		defer file.Close()
		source = file
	}
	var h history
	decoder := json.NewDecoder(source)
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&h); err != nil {
		fail("history is not valid JSON of {\"operations\": [...]}: %v", err)
	}
	byKey := map[string][]porcupine.Operation{}
	for i, op := range h.Operations {
		if op.Key == "" || (op.Kind != "write" && op.Kind != "read") {
			fail("operation %d: needs a key and kind \"write\" or \"read\"", i)
		}
		ret := int64(math.MaxInt64)
		if op.Return != nil {
			ret = *op.Return
		} else if op.Kind == "read" {
			continue // a read without an answer says nothing
		}
		if ret < op.Call {
			fail("operation %d: returns before its call", i)
		}
		byKey[op.Key] = append(byKey[op.Key], porcupine.Operation{
			ClientId: op.Client, Input: input{write: op.Kind == "write", value: op.Value}, Call: op.Call, Output: op.Value, Return: ret,
		})
	}
	keys := make([]string, 0, len(byKey))
	for key := range byKey {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	v := verdict{OK: true, Result: "Ok", Operations: len(h.Operations), Keys: len(keys), Violations: []string{}, Unknown: []string{}}
	for _, key := range keys {
		switch porcupine.CheckOperationsTimeout(register, byKey[key], 10*time.Second) {
		case porcupine.Illegal:
			v.Violations = append(v.Violations, key)
		case porcupine.Unknown:
			v.Unknown = append(v.Unknown, key)
		}
	}
	if len(v.Violations) > 0 {
		v.OK, v.Result = false, "Illegal"
	} else if len(v.Unknown) > 0 {
		v.OK, v.Result = false, "Unknown"
	}
	out, _ := json.Marshal(v)
	fmt.Println(string(out))
	if !v.OK {
		os.Exit(1)
	}
}
