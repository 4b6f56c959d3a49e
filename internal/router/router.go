// Package router scores hosts and chooses the main and backup host for a task.
// It is pure policy: no I/O, no clock, no goroutines. The dispatcher feeds it
// the live hosts with their measured figures and runs what it picks.
//
// Only orchestrator packages import it (dispatch, and anything that wants to
// explain a routing decision).
package router

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Candidate is one live host that serves the model, as the router sees it.
type Candidate struct {
	ID     string
	Owner  string // backups come from another owner (an independent failure domain)
	Region string
	Tier   string // "standard" or "enterprise"
	// TTFT and MsPerToken are EWMAs of what the orchestrator measured; zero
	// means not measured yet (the router assumes the median of the others).
	TTFT       time.Duration
	MsPerToken float64
	Successes  int64
	Failures   int64
	// Divergences counts verification disagreements; they weigh like
	// failures (a host that fakes work sinks), but never strike.
	Divergences int64
	InFlight    int // tasks running on the host now
	Capacity    int // concurrent tasks it accepts; <= 0 means 1
	RTT         time.Duration
	Strikes     int // recent strikes (a warned host is less preferred)
	// Fallback marks an operator-run host: it is chosen only when no
	// community host can take the task (none usable, or all at capacity),
	// and is a backup only for a fallback main.
	Fallback bool
}

// Want says what the task needs and prefers.
type Want struct {
	Tokens int    // tokens the task is expected to produce (weighs ms/token against TTFT); 0 means 16
	Region string // preferred region (the orchestrator's); "" means any
	Tier   string // "enterprise" prefers enterprise hosts; "" means any
	// Exclude lists hosts not to use (they already failed this request).
	Exclude map[string]bool
}

// Choice is the result of Choose: indexes into the candidates, -1 for none.
type Choice struct {
	Main, Backup int
	// Full is set when every usable candidate was at capacity, so Main is -1.
	Full bool
}

// Tunables of the score. They are expressed as multipliers of the expected
// latency in milliseconds, so they compose and stay explainable.
const (
	// NearEqual is how far (as a ratio of the best score) a host may be and
	// still be a power-of-two-choices candidate.
	NearEqual = 1.25
	// defaultTTFT and defaultMsPerToken stand in when no host was measured.
	defaultTTFT       = 200 * time.Millisecond
	defaultMsPerToken = 20.0
	// priorTasks is how many successful tasks a new host is assumed to have,
	// so one early failure does not bury it (a Beta prior on the failure rate).
	priorTasks        = 20
	failurePenalty    = 4.0  // score × (1 + 4·failure rate)
	strikePenalty     = 0.5  // score × (1 + 0.5·strikes)
	regionPenalty     = 0.15 // score × 1.15 outside the preferred region
	enterpriseBonus   = 0.5  // score × 0.5 for an enterprise host when enterprise is preferred
	sameRegionBackup  = 0.10 // a backup in the main's region scores × 1.10
	defaultTaskTokens = 16
)

// Score is c's expected cost in milliseconds for a task of w.Tokens tokens,
// inflated by load, failure history, strikes and region, deflated by a
// preferred tier. Lower is better. prior fills unmeasured figures.
func Score(c Candidate, w Want, prior Candidate) float64 {
	ttft, mpt := c.TTFT, c.MsPerToken
	if ttft <= 0 {
		ttft = prior.TTFT
	}
	if mpt <= 0 {
		mpt = prior.MsPerToken
	}
	tokens := w.Tokens
	if tokens <= 0 {
		tokens = defaultTaskTokens
	}
	ms := float64(ttft+c.RTT)/float64(time.Millisecond) + mpt*float64(tokens)
	if ms < 0.01 {
		ms = 0.01
	}
	capacity := max(c.Capacity, 1)
	ms *= 1 + float64(c.InFlight)/float64(capacity)
	failRate := float64(c.Failures+c.Divergences) / float64(c.Successes+c.Failures+c.Divergences+priorTasks)
	ms *= 1 + failurePenalty*failRate
	ms *= 1 + strikePenalty*float64(c.Strikes)
	if w.Region != "" && c.Region != w.Region {
		ms *= 1 + regionPenalty
	}
	if w.Tier == "enterprise" && c.Tier == "enterprise" {
		ms *= enterpriseBonus
	}
	return ms
}

// Prior returns the figures assumed for an unmeasured host: the (lower) median of
// the measured candidates, optimistic so a new host gets a chance to be measured, or defaults when none is measured.
func Prior(cands []Candidate) Candidate {
	var ttfts []time.Duration
	var mpts []float64
	for _, c := range cands {
		if c.TTFT > 0 {
			ttfts = append(ttfts, c.TTFT)
		}
		if c.MsPerToken > 0 {
			mpts = append(mpts, c.MsPerToken)
		}
	}
	p := Candidate{TTFT: defaultTTFT, MsPerToken: defaultMsPerToken}
	if len(ttfts) > 0 {
		slices.Sort(ttfts)
		p.TTFT = ttfts[(len(ttfts)-1)/2]
	}
	if len(mpts) > 0 {
		slices.Sort(mpts)
		p.MsPerToken = mpts[(len(mpts)-1)/2]
	}
	return p
}

// Choose picks a main and a backup among cands. The main is drawn by power of
// two choices among hosts within NearEqual of the best score (so one fast
// host is not stampeded); the backup is chosen as ChooseBackup does. Excluded
// hosts and hosts at capacity are never chosen. rng may be nil (then the best
// score wins, which tests use for determinism).
func Choose(cands []Candidate, w Want, rng *rand.Rand) Choice {
	scores, usable, full := scoreAll(cands, w)
	ch := Choice{Main: pick(cands, tierFirst(cands, scores, w), rng), Backup: -1}
	if ch.Main < 0 {
		ch.Full = usable > 0 && full == usable
		return ch
	}
	ch.Backup = backup(cands, scores, cands[ch.Main], rng)
	return ch
}

// tierFirst returns scores with every host outside w's preferred tier left
// out (-1) when a host of that tier is free: a request that prefers
// enterprise hosts gets one as its main whenever it can, however the scores
// compare. Backups are chosen from every host. Without a preferred tier, or
// with none of its hosts free, it returns scores unchanged.
func tierFirst(cands []Candidate, scores []float64, w Want) []float64 {
	if w.Tier != "enterprise" {
		return scores
	}
	only := make([]float64, len(scores))
	found := false
	for i, s := range scores {
		only[i] = -1
		if s >= 0 && cands[i].Tier == "enterprise" {
			only[i], found = s, true
		}
	}
	if !found {
		return scores
	}
	return only
}

// ChooseBackup picks a backup for a task whose main is main (which need not
// be among cands): the best host from another owner, other things equal in
// another region; else another host of the same owner; else -1.
func ChooseBackup(cands []Candidate, main Candidate, w Want, rng *rand.Rand) int {
	scores, _, _ := scoreAll(cands, w)
	return backup(cands, scores, main, rng)
}

// scoreAll scores every usable candidate (-1 for excluded or full ones).
// Fallback hosts score only when no community host is free.
func scoreAll(cands []Candidate, w Want) (scores []float64, usable, full int) {
	prior := Prior(cands)
	scores = make([]float64, len(cands))
	community := CommunityFree(cands, w)
	for i, c := range cands {
		scores[i] = -1
		if w.Exclude[c.ID] {
			continue
		}
		usable++
		if c.InFlight >= max(c.Capacity, 1) {
			full++
			continue
		}
		if c.Fallback && community {
			continue
		}
		scores[i] = Score(c, w, prior)
	}
	return scores, usable, full
}

// CommunityFree reports whether some community (non-fallback) candidate not
// excluded by w has a free slot.
func CommunityFree(cands []Candidate, w Want) bool {
	for _, c := range cands {
		if !c.Fallback && !w.Exclude[c.ID] && c.InFlight < max(c.Capacity, 1) {
			return true
		}
	}
	return false
}

func backup(cands []Candidate, scores []float64, main Candidate, rng *rand.Rand) int {
	other := make([]float64, len(cands))
	same := make([]float64, len(cands))
	for i, s := range scores {
		other[i], same[i] = -1, -1
		if s < 0 || cands[i].ID == main.ID || (cands[i].Fallback && !main.Fallback) {
			continue
		}
		if cands[i].Owner != main.Owner || main.Owner == "" {
			if cands[i].Region == main.Region && main.Region != "" {
				s *= 1 + sameRegionBackup
			}
			other[i] = s
		} else {
			same[i] = s
		}
	}
	if b := pick(cands, other, rng); b >= 0 {
		return b
	}
	return pick(cands, same, rng)
}

// pick draws among the near-best scores (negative scores are unusable) by
// power of two choices: of two random near-equals, the less loaded wins.
func pick(cands []Candidate, scores []float64, rng *rand.Rand) int {
	best := -1
	for i, s := range scores {
		if s >= 0 && (best < 0 || s < scores[best]) {
			best = i
		}
	}
	if best < 0 || rng == nil {
		return best
	}
	var near []int
	for i, s := range scores {
		if s >= 0 && s <= scores[best]*NearEqual {
			near = append(near, i)
		}
	}
	if len(near) < 2 {
		return best
	}
	a := near[rng.IntN(len(near))]
	b := near[rng.IntN(len(near)-1)]
	if b == a {
		b = near[len(near)-1]
	}
	la, lb := load(cands[a]), load(cands[b])
	if lb < la {
		return b
	}
	return a // a is itself random, so ties are shared fairly
}

func load(c Candidate) float64 { return float64(c.InFlight) / float64(max(c.Capacity, 1)) }
