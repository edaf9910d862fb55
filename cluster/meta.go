package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Role is the part a process plays in a surge cluster.
type Role string

const (
	// RoleController marks the controller, which serves gRPC to agents and the CLI.
	RoleController Role = "controller"
	// RoleAgent marks an agent, which generates load.
	RoleAgent Role = "agent"
)

// Valid reports whether r is a role surge knows.
func (r Role) Valid() bool {
	return r == RoleController || r == RoleAgent
}

// MetaMaxSize is the largest encoded Meta memberlist accepts. memberlist panics
// past it, so Meta.Encode checks first.
const MetaMaxSize = memberlist.MetaMaxSize

// ErrMetaTooLarge is returned (wrapped) by Meta.Encode when the encoding does
// not fit in MetaMaxSize bytes.
var ErrMetaTooLarge = errors.New("node meta too large")

// Meta is what a node tells the cluster about itself through gossip. It is
// small and carries no secrets: gossip is for discovery, never for work.
type Meta struct {
	// Role is controller or agent.
	Role Role `json:"r"`
	// ID is the stable identity of the process (the agent id), the same
	// across restarts.
	ID string `json:"id"`
	// Incarnation distinguishes restarts of the same ID; see NewIncarnation.
	Incarnation string `json:"inc"`
	// Region and Zone locate the node.
	Region string `json:"rg,omitempty"`
	Zone   string `json:"z,omitempty"`
	// GRPCAddr is the controller's gRPC address (host:port); empty for agents.
	GRPCAddr string `json:"g,omitempty"`
	// Version is the surge version the node runs.
	Version string `json:"v,omitempty"`
}

// Name is the memberlist node name of this incarnation: ID + "-" + Incarnation.
// A restarted process gets a fresh name, so it is never mistaken for (or
// locked out by) its previous self.
func (m Meta) Name() string {
	return m.ID + "-" + m.Incarnation
}

// Encode returns the compact wire form of m. It fails with an error wrapping
// ErrMetaTooLarge if the encoding exceeds MetaMaxSize bytes.
func (m Meta) Encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode meta: %w", err)
	}
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("cluster: encode meta: %d bytes, limit is %d: %w", len(b), MetaMaxSize, ErrMetaTooLarge)
	}
	return b, nil
}

// DecodeMeta parses the wire form produced by Meta.Encode.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, errors.New("cluster: decode meta: empty")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("cluster: decode meta: %w", err)
	}
	if m.ID == "" {
		return Meta{}, errors.New("cluster: decode meta: missing id")
	}
	return m, nil
}

// validate checks what Join needs from the local node's meta.
func (m Meta) validate() error {
	if !m.Role.Valid() {
		return fmt.Errorf("cluster: meta: unknown role %q (want %q or %q)", m.Role, RoleController, RoleAgent)
	}
	if m.ID == "" {
		return errors.New("cluster: meta: empty id")
	}
	if m.Incarnation == "" {
		return errors.New("cluster: meta: empty incarnation")
	}
	return nil
}

// NewIncarnation returns a short random string that identifies one run of a
// process. Use it for Meta.Incarnation.
func NewIncarnation() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}
