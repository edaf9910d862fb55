package target

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(s.Stats()); err != nil {
		s.log.Debug("write stats", "err", err)
	}
}

func (s *Server) serveReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// serveWSDrop drops ?n= active WebSocket sessions, all without n, and
// answers {"dropped": k}.
func (s *Server) serveWSDrop(w http.ResponseWriter, r *http.Request) {
	n := -1
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("ws drop: n=%q: want a count, 0 or more", v), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(map[string]int{"dropped": s.DropWebSockets(n)}); err != nil {
		s.log.Debug("write ws drop", "err", err)
	}
}

// serveControlOther answers a control path with the wrong method (405) or
// one that does not exist (404).
func serveControlOther(w http.ResponseWriter, r *http.Request) {
	allow := map[string]string{StatsPath: "GET", ResetPath: "POST", WSDropPath: "POST", ShopLoginsPath: "POST"}[r.URL.Path]
	if allow == "" {
		http.Error(w, "no control endpoint "+r.URL.Path, http.StatusNotFound)
		return
	}
	w.Header().Set("Allow", allow)
	http.Error(w, r.URL.Path+": use "+allow, http.StatusMethodNotAllowed)
}
