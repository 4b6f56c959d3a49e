package governance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/store"
)

// Seat states.
const (
	SeatActive  = "active"
	SeatWaiting = "waiting"
)

// SeatsFor is the seat formula: enough seats for the peak concurrent streams
// with headroom, never fewer than MinSeats.
func (p Policy) SeatsFor(peakStreams, meanCapacity float64) int {
	p = p.WithDefaults()
	if meanCapacity <= 0 {
		meanCapacity = 1
	}
	n := int(math.Ceil(peakStreams * (1 + p.Headroom) / meanCapacity))
	if n < p.MinSeats {
		n = p.MinSeats
	}
	return n
}

// Seat is one host's place in its region.
type Seat struct {
	HostID     string    `json:"host_id"`
	Region     string    `json:"region"`
	State      string    `json:"state"`              // SeatActive or SeatWaiting
	Position   int       `json:"position,omitempty"` // 1-based place on the waitlist
	Joined     time.Time `json:"joined"`
	LastActive time.Time `json:"last_active"`
}

// RegionSeats summarises a region.
type RegionSeats struct {
	Region  string  `json:"region"`
	Seats   int     `json:"seats"`
	Active  int     `json:"active"`
	Waiting int     `json:"waiting"`
	Peak    float64 `json:"peak_streams"`
}

// Seats gates hosts per region: a host joins, gets a seat while seats are
// free, otherwise waits in order of joining; it keeps its seat while active
// (seen within ActiveWindow) and loses it after, going to the back of the
// line. Seats never shrink under active hosts: fewer seats only slow new
// admissions.
type Seats struct {
	db     *store.DB
	policy Policy
	now    func() time.Time

	mu     sync.Mutex
	demand map[string]*demand // region → recent peaks
}

// demand keeps per-region concurrent-stream samples for the trailing window.
type demand struct {
	samples  []sample
	capacity map[string]float64 // host → declared capacity
}

type sample struct {
	at      time.Time
	streams float64
}

var seatMigrations = []store.Migration{
	{SQL: `CREATE TABLE gov_seats (host_id TEXT PRIMARY KEY, region TEXT NOT NULL, state TEXT NOT NULL,
		joined_unix BIGINT NOT NULL, last_active_unix BIGINT NOT NULL)`},
	{SQL: `CREATE INDEX gov_seats_region ON gov_seats (region, state, joined_unix)`},
}

// OpenSeats runs the seat migrations.
func OpenSeats(ctx context.Context, db *store.DB, p Policy, now func() time.Time) (*Seats, error) {
	if err := db.Migrate(ctx, "governance_seats", seatMigrations); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Seats{db: db, policy: p.WithDefaults(), now: now, demand: map[string]*demand{}}, nil
}

// Observe records the concurrent streams served in a region now and a host's
// declared capacity; the seat count follows the peak over DemandWindow.
func (s *Seats) Observe(region string, streams float64, hostCapacity map[string]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.demand[region]
	if d == nil {
		d = &demand{capacity: map[string]float64{}}
		s.demand[region] = d
	}
	now := s.now()
	d.samples = append(d.samples, sample{now, streams})
	cut := 0
	for cut < len(d.samples) && now.Sub(d.samples[cut].at) > s.policy.DemandWindow {
		cut++
	}
	d.samples = d.samples[cut:]
	for h, c := range hostCapacity {
		d.capacity[h] = c
	}
}

// target is the seat count of region now, and the peak it is based on.
func (s *Seats) target(region string) (int, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.demand[region]
	if d == nil {
		return s.policy.SeatsFor(0, 1), 0
	}
	var peak, capSum float64
	for _, x := range d.samples {
		peak = math.Max(peak, x.streams)
	}
	for _, c := range d.capacity {
		capSum += c
	}
	mean := 1.0
	if len(d.capacity) > 0 {
		mean = capSum / float64(len(d.capacity))
	}
	return s.policy.SeatsFor(peak, mean), peak
}

// Admit is called when a host connects (and may be called again): it
// refreshes the host's activity and returns its seat. A host already seated
// and active keeps its seat; a new or lapsed host takes a free seat or waits.
func (s *Seats) Admit(ctx context.Context, hostID, region string) (Seat, error) {
	if region == "" {
		region = "default"
	}
	now := s.now()
	var seat Seat
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.expire(ctx, tx, region, now); err != nil {
			return err
		}
		var state string
		var joined int64
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT state, joined_unix FROM gov_seats WHERE host_id = ?`), hostID).Scan(&state, &joined)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			state, joined = SeatWaiting, now.UnixNano()
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO gov_seats (host_id, region, state, joined_unix, last_active_unix) VALUES (?, ?, ?, ?, ?)`),
				hostID, region, state, joined, now.UnixNano()); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE gov_seats SET last_active_unix = ?, region = ? WHERE host_id = ?`), now.UnixNano(), region, hostID); err != nil {
				return err
			}
		}
		if err := s.fill(ctx, tx, region); err != nil {
			return err
		}
		seat, err = s.seat(ctx, tx, hostID)
		return err
	})
	if err != nil {
		return Seat{}, fmt.Errorf("admit host %s: %w", hostID, err)
	}
	return seat, nil
}

// Touch marks a host active (called on heartbeats) without changing seats.
func (s *Seats) Touch(ctx context.Context, hostID string) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE gov_seats SET last_active_unix = ? WHERE host_id = ?`), s.now().UnixNano(), hostID)
	return err
}

// Leave removes a host from seating (host removed by an operator).
func (s *Seats) Leave(ctx context.Context, hostID string) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM gov_seats WHERE host_id = ?`), hostID)
	return err
}

// expire sends active hosts silent for longer than ActiveWindow to the back
// of the waitlist.
func (s *Seats) expire(ctx context.Context, tx *sql.Tx, region string, now time.Time) error {
	cut := now.Add(-s.policy.ActiveWindow).UnixNano()
	_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE gov_seats SET state = ?, joined_unix = ? WHERE region = ? AND state = ? AND last_active_unix < ?`),
		SeatWaiting, now.UnixNano(), region, SeatActive, cut)
	return err
}

// fill admits waiting hosts that are themselves active, in order of joining,
// while seats are free.
func (s *Seats) fill(ctx context.Context, tx *sql.Tx, region string) error {
	seats, _ := s.target(region)
	var active int
	if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM gov_seats WHERE region = ? AND state = ?`), region, SeatActive).Scan(&active); err != nil {
		return err
	}
	if active >= seats {
		return nil
	}
	cut := s.now().Add(-s.policy.ActiveWindow).UnixNano()
	rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT host_id FROM gov_seats WHERE region = ? AND state = ? AND last_active_unix >= ? ORDER BY joined_unix, host_id`),
		region, SeatWaiting, cut)
	if err != nil {
		return err
	}
	var admit []string
	for rows.Next() && active+len(admit) < seats {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		admit = append(admit, id)
	}
	rows.Close()
	for _, id := range admit {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE gov_seats SET state = ? WHERE host_id = ?`), SeatActive, id); err != nil {
			return err
		}
	}
	return nil
}

func (s *Seats) seat(ctx context.Context, q querier, hostID string) (Seat, error) {
	var st Seat
	var joined, last int64
	err := q.QueryRowContext(ctx, s.db.Rebind(`SELECT host_id, region, state, joined_unix, last_active_unix FROM gov_seats WHERE host_id = ?`), hostID).
		Scan(&st.HostID, &st.Region, &st.State, &joined, &last)
	if err != nil {
		return Seat{}, err
	}
	st.Joined, st.LastActive = time.Unix(0, joined).UTC(), time.Unix(0, last).UTC()
	if st.State == SeatWaiting {
		err = q.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM gov_seats WHERE region = ? AND state = ? AND (joined_unix < ? OR (joined_unix = ? AND host_id < ?))`),
			st.Region, SeatWaiting, joined, joined, hostID).Scan(&st.Position)
		st.Position++
	}
	return st, err
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// Regions lists every region's seats, active and waiting counts.
func (s *Seats) Regions(ctx context.Context) ([]RegionSeats, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT region, state, COUNT(*) FROM gov_seats GROUP BY region, state`)
	if err != nil {
		return nil, fmt.Errorf("seat regions: %w", err)
	}
	defer rows.Close()
	by := map[string]*RegionSeats{}
	for rows.Next() {
		var region, state string
		var n int
		if err := rows.Scan(&region, &state, &n); err != nil {
			return nil, err
		}
		r := by[region]
		if r == nil {
			r = &RegionSeats{Region: region}
			by[region] = r
		}
		if state == SeatActive {
			r.Active = n
		} else {
			r.Waiting = n
		}
	}
	out := make([]RegionSeats, 0, len(by))
	for _, r := range by {
		r.Seats, r.Peak = s.target(r.Region)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out, rows.Err()
}

// List returns every seat of region ("" = all), waiting hosts with positions.
func (s *Seats) List(ctx context.Context, region string) ([]Seat, error) {
	q := `SELECT host_id FROM gov_seats`
	var args []any
	if region != "" {
		q += ` WHERE region = ?`
		args = append(args, region)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q+` ORDER BY region, state, joined_unix, host_id`), args...)
	if err != nil {
		return nil, fmt.Errorf("list seats: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]Seat, 0, len(ids))
	for _, id := range ids {
		st, err := s.seat(ctx, s.db, id)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
