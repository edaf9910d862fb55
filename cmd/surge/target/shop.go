package target

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The shop is the target's small stateful API, for plans whose flows carry
// state (docs/target.md): POST /login returns a token and sets a session
// cookie; GET /account wants the cookie, POST /orders and GET
// /orders/{id} the token (Authorization: Bearer), and an order is only
// given to the session that created it.
const (
	LoginPath   = "/login"
	AccountPath = "/account"
	OrdersPath  = "/orders"
	// ShopLoginsPath makes logins fail (POST ?fail=true, answered 503) or
	// work again (?fail=false).
	ShopLoginsPath = "/__surge/shop/logins"
	// SessionCookie names the session cookie /login sets.
	SessionCookie = "session"
)

// maxShopItems bounds the sessions and the orders the shop keeps; past it
// a login or an order is refused (503) and counted in ShopStats.Full.
const maxShopItems = 1 << 20

// ShopStats count the shop's work since start or the last reset.
type ShopStats struct {
	// Logins succeeded, by the "user" their body named ("" without one).
	Logins       int64            `json:"logins"`
	LoginsByUser map[string]int64 `json:"logins_by_user"`
	// LoginsFailed were answered 503 while logins fail.
	LoginsFailed int64 `json:"logins_failed"`
	// Unauthorized were answered 401: no token or cookie, or one the shop
	// never gave.
	Unauthorized int64 `json:"unauthorized"`
	// Mismatched carried the token of one login and the cookie of
	// another (answered 403): sessions crossed between clients.
	Mismatched    int64 `json:"mismatched"`
	OrdersCreated int64 `json:"orders_created"`
	// OrdersFetched were fetched by the session that created them;
	// OrdersForeign asked for by another (403); OrdersMissing asked for
	// an id never created (404).
	OrdersFetched int64 `json:"orders_fetched"`
	OrdersForeign int64 `json:"orders_foreign"`
	OrdersMissing int64 `json:"orders_missing"`
	// Full counts logins and orders refused because the shop held
	// maxShopItems.
	Full int64 `json:"full"`
}

// shop holds the sessions and orders.
type shop struct {
	failLogins atomic.Bool

	mu       sync.Mutex
	sessions map[string]*shopSession // by token
	cookies  map[string]*shopSession // by session cookie
	orders   map[string]*shopSession // order id → its creator
	nextID   int64
	st       ShopStats
}

type shopSession struct{ user, token, cookie string }

func newShop() *shop {
	sh := &shop{}
	sh.reset()
	return sh
}

func (sh *shop) reset() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.sessions, sh.cookies, sh.orders = map[string]*shopSession{}, map[string]*shopSession{}, map[string]*shopSession{}
	sh.nextID, sh.st = 0, ShopStats{LoginsByUser: map[string]int64{}}
}

func (sh *shop) stats() ShopStats {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.st
	st.LoginsByUser = make(map[string]int64, len(sh.st.LoginsByUser))
	for k, v := range sh.st.LoginsByUser {
		st.LoginsByUser[k] = v
	}
	return st
}

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	var body struct {
		User string `json:"user"`
	}
	if b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16)); len(b) > 0 {
		_ = json.Unmarshal(b, &body) // a body that is not JSON names no user
	}
	sh := s.shop
	if sh.failLogins.Load() {
		sh.count(func(st *ShopStats) { st.LoginsFailed++ })
		s.jsonReply(w, http.StatusServiceUnavailable, map[string]string{"error": "logins are failing"})
		return
	}
	ss := &shopSession{user: body.User, token: randomID(), cookie: randomID()}
	sh.mu.Lock()
	full := len(sh.sessions) >= maxShopItems
	if full {
		sh.st.Full++
	} else {
		sh.sessions[ss.token], sh.cookies[ss.cookie] = ss, ss
		sh.st.Logins++
		sh.st.LoginsByUser[ss.user]++
	}
	sh.mu.Unlock()
	if full {
		s.jsonReply(w, http.StatusServiceUnavailable, map[string]string{"error": "too many sessions"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: ss.cookie, Path: "/", HttpOnly: true})
	s.jsonReply(w, http.StatusOK, map[string]string{"token": ss.token, "user": ss.user})
}

func (s *Server) serveAccount(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	ss, code := s.shop.authorize(r, true)
	if ss == nil {
		s.jsonReply(w, code, map[string]string{"error": http.StatusText(code)})
		return
	}
	s.jsonReply(w, http.StatusOK, map[string]string{"user": ss.user})
}

func (s *Server) serveCreateOrder(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	_, _ = io.Copy(io.Discard, r.Body)
	sh := s.shop
	ss, code := sh.authorize(r, false)
	if ss == nil {
		s.jsonReply(w, code, map[string]string{"error": http.StatusText(code)})
		return
	}
	sh.mu.Lock()
	full := len(sh.orders) >= maxShopItems
	var id string
	if full {
		sh.st.Full++
	} else {
		sh.nextID++
		id = "o" + strconv.FormatInt(sh.nextID, 10)
		sh.orders[id] = ss
		sh.st.OrdersCreated++
	}
	sh.mu.Unlock()
	if full {
		s.jsonReply(w, http.StatusServiceUnavailable, map[string]string{"error": "too many orders"})
		return
	}
	s.jsonReply(w, http.StatusCreated, map[string]string{"id": id, "user": ss.user})
}

func (s *Server) serveOrder(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	sh := s.shop
	ss, code := sh.authorize(r, false)
	if ss == nil {
		s.jsonReply(w, code, map[string]string{"error": http.StatusText(code)})
		return
	}
	id := r.PathValue("id")
	sh.mu.Lock()
	owner, ok := sh.orders[id]
	switch {
	case !ok:
		sh.st.OrdersMissing++
		code = http.StatusNotFound
	case owner != ss:
		sh.st.OrdersForeign++
		code = http.StatusForbidden
	default:
		sh.st.OrdersFetched++
		code = http.StatusOK
	}
	sh.mu.Unlock()
	if code != http.StatusOK {
		s.jsonReply(w, code, map[string]string{"error": http.StatusText(code), "id": id})
		return
	}
	s.jsonReply(w, code, map[string]string{"id": id, "user": ss.user})
}

// authorize finds the request's session: by its session cookie when
// cookie is set, else by its bearer token. A request that carries both
// must carry one login's. It returns the status to answer without one.
func (sh *shop) authorize(r *http.Request, cookie bool) (*shopSession, int) {
	token, hasToken := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	c, err := r.Cookie(SessionCookie)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var byToken, byCookie *shopSession
	if hasToken {
		byToken = sh.sessions[token]
	}
	if err == nil {
		byCookie = sh.cookies[c.Value]
	}
	ss := byToken
	if cookie {
		ss = byCookie
	}
	switch {
	case ss == nil:
		sh.st.Unauthorized++
		return nil, http.StatusUnauthorized
	case byToken != nil && byCookie != nil && byToken != byCookie:
		sh.st.Mismatched++
		return nil, http.StatusForbidden
	}
	return ss, 0
}

func (sh *shop) count(fn func(*ShopStats)) {
	sh.mu.Lock()
	fn(&sh.st)
	sh.mu.Unlock()
}

// serveShopLogins turns login failures on (?fail=true) or off.
func (s *Server) serveShopLogins(w http.ResponseWriter, r *http.Request) {
	fail, err := strconv.ParseBool(r.URL.Query().Get("fail"))
	if err != nil {
		http.Error(w, "shop logins: want ?fail=true or ?fail=false", http.StatusBadRequest)
		return
	}
	s.shop.failLogins.Store(fail)
	w.WriteHeader(http.StatusNoContent)
}

// SetLoginsFailing makes the shop's logins fail (503) or work.
func (s *Server) SetLoginsFailing(fail bool) { s.shop.failLogins.Store(fail) }

// jsonReply sends v as JSON with code, counted.
func (s *Server) jsonReply(w http.ResponseWriter, code int, v any) {
	s.countStatus(code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("write shop reply", "err", err)
	}
}

// randomID is 16 random bytes in hex.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
