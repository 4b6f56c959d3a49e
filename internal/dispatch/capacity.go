package dispatch

// Load is the task capacity of the live, usable hosts serving a model and
// the tasks this dispatcher runs on them now.
type Load struct {
	Hosts    int // live, usable hosts serving the model
	Capacity int // sum of their declared concurrent tasks
	InFlight int // tasks running on them now
	Fallback int // how many of Hosts are operator-run fallback hosts
}

// Load reports model's capacity and use now. It reads memory only, so a
// capacity gate may call it on every admission.
func (d *Dispatcher) Load(model string) Load {
	d.mu.Lock()
	defer d.mu.Unlock()
	var l Load
	for _, h := range d.hosts {
		if _, ok := h.models[model]; !ok || !d.usable(h) {
			continue
		}
		l.Hosts++
		l.Capacity += max(h.capacity, 1)
		l.InFlight += h.inflight
		if h.fallback {
			l.Fallback++
		}
	}
	return l
}

// UpdateHost applies a registry change of tier or fallback flag to a
// connected host at once (governance demotes hosts while they work).
func (d *Dispatcher) UpdateHost(hostID, tier string, fallback bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h := d.hosts[hostID]; h != nil {
		h.tier, h.fallback = tier, fallback
	}
}
