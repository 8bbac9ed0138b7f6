// A webhook receiver for the benchmark (and any test that wants it): the same HTTP interface as
// testkit/webhook_receiver.py, verifying every delivery with the Standard Webhooks reference Go library
// (github.com/standard-webhooks/standard-webhooks/libraries, pinned in go.mod and go.sum), in Go so that it is not
// what a benchmark waits for. Usage: webhook-receiver HOST PORT.
//
//	POST /hooks/{name}          a delivery: verified with name's secret (401 if it fails), then answered as
//	                            configured (fail_first, fail_ids, redirect, else 204); recorded when keep is true
//	PUT  /control/{name}        configure name: {"secret", "fail_first", "fail_ids", "redirect", "keep"}
//	GET  /control/{name}        what it received: [{"id", "type", "data", "webhook_id", "verified", "status",
//	                            "signatures"}]
//	GET  /control/{name}/count  how many verified deliveries it answered 2xx
//	POST /raw/{name}            no verification, 204
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

type spec struct {
	Secret    *string  `json:"secret"`
	FailFirst []int    `json:"fail_first"`
	FailIDs   []string `json:"fail_ids"`
	Redirect  *string  `json:"redirect"`
	Keep      *bool    `json:"keep"`
}

type record struct {
	ID         any    `json:"id"`
	Type       any    `json:"type"`
	Data       any    `json:"data"`
	WebhookID  string `json:"webhook_id"`
	Verified   bool   `json:"verified"`
	Status     int    `json:"status"`
	Signatures int    `json:"signatures"`
}

type hook struct {
	verifier  *standardwebhooks.Webhook
	failFirst []int
	failIDs   map[string]bool
	redirect  string
	keep      bool
	received  []record
	ok        int64
}

type receiver struct {
	mu    sync.Mutex
	hooks map[string]*hook
}

func (rc *receiver) get(name string) *hook {
	h, found := rc.hooks[name]
	if !found {
		h = &hook{keep: true, failIDs: map[string]bool{}}
		rc.hooks[name] = h
	}
	return h
}

// answer: what a verified delivery of eventID gets (called with the lock held)
func (h *hook) answer(eventID string) (int, string) {
	switch {
	case h.redirect != "":
		return http.StatusTemporaryRedirect, h.redirect
	case len(h.failFirst) > 0:
		code := h.failFirst[0]
		h.failFirst = h.failFirst[1:]
		return code, ""
	case h.failIDs[eventID]:
		return http.StatusInternalServerError, ""
	}
	h.ok++
	return http.StatusNoContent, ""
}

func (rc *receiver) deliver(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name := r.PathValue("name")
	rc.mu.Lock()
	h := rc.get(name)
	verifier, keep, parse := h.verifier, h.keep, h.keep || len(h.failIDs) > 0
	rc.mu.Unlock()
	verified := verifier != nil && verifier.Verify(body, r.Header) == nil
	var event map[string]any
	if parse {
		_ = json.Unmarshal(body, &event)
	}
	eventID := fmt.Sprint(event["id"])
	code, location := http.StatusUnauthorized, ""
	rc.mu.Lock()
	if verified {
		code, location = h.answer(eventID)
	}
	if keep {
		sigs := len(strings.Fields(r.Header.Get("webhook-signature")))
		h.received = append(h.received, record{event["id"], event["type"], event["data"],
			r.Header.Get("webhook-id"), verified, code, sigs})
	}
	rc.mu.Unlock()
	if location != "" {
		w.Header().Set("Location", location)
	}
	w.WriteHeader(code)
}

func (rc *receiver) control(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if r.Method == http.MethodPut {
		var s spec
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var verifier *standardwebhooks.Webhook
		if s.Secret != nil {
			v, err := standardwebhooks.NewWebhook(*s.Secret)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			verifier = v
		}
		ids := map[string]bool{}
		for _, id := range s.FailIDs {
			ids[id] = true
		}
		rc.mu.Lock()
		h := rc.get(name) // what it received so far stays
		h.verifier, h.failFirst, h.failIDs, h.redirect = verifier, s.FailFirst, ids, ""
		h.keep = s.Keep == nil || *s.Keep
		if s.Redirect != nil {
			h.redirect = *s.Redirect
		}
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rc.mu.Lock()
	out := append([]record{}, rc.get(name).received...)
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (rc *receiver) count(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	n := rc.get(r.PathValue("name")).ok
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, n)
}

func (rc *receiver) raw(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	rc.mu.Lock()
	rc.get("raw:"+r.PathValue("name")).ok++
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: webhook-receiver HOST PORT")
	}
	rc := &receiver{hooks: map[string]*hook{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{name}", rc.deliver)
	mux.HandleFunc("GET /control/{name}", rc.control)
	mux.HandleFunc("PUT /control/{name}", rc.control)
	mux.HandleFunc("GET /control/{name}/count", rc.count)
	mux.HandleFunc("POST /raw/{name}", rc.raw)
	server := &http.Server{
		Addr:              net.JoinHostPort(os.Args[1], os.Args[2]),
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       75 * time.Second,
	}
	log.Fatal(server.ListenAndServe())
}
