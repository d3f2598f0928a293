package media

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes an Engine's totals to Prometheus. It reads them at
// scrape time, so the forwarding path pays nothing for metrics.
type Collector struct {
	e     *Engine
	descs map[string]*prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of e's metrics, to register once.
func NewCollector(e *Engine) *Collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &Collector{e: e, descs: map[string]*prometheus.Desc{
		"door_packets": d("foyer_media_door_packets_received_total", "RTP packets received from door stations."),
		"door_bytes":   d("foyer_media_door_bytes_received_total", "RTP payload bytes received from door stations."),
		"fwd_packets":  d("foyer_media_packets_forwarded_total", "RTP packets written to devices (one per packet and device)."),
		"fwd_bytes":    d("foyer_media_bytes_forwarded_total", "RTP payload bytes written to devices."),
		"device_pkts":  d("foyer_media_device_packets_received_total", "RTP packets from answering devices' microphones to door stations."),
		"write_errors": d("foyer_media_write_errors_total", "RTP writes refused (closing connections): packets lost on the way out."),
		"malformed":    d("foyer_media_malformed_packets_total", "Received packets that were not RTP: packets lost on the way in."),
		"plis":         d("foyer_media_pli_total", "Keyframe requests (PLI) sent to door stations."),
		"kf_requests":  d("foyer_media_keyframe_requests_total", "Keyframe requests from new viewers and devices, sent or coalesced."),
		"active":       d("foyer_media_sessions_active", "Calls with a media session on this node."),
		"devices":      d("foyer_media_devices", "Devices holding a peer connection in this node's media sessions."),
		"lost": prometheus.NewDesc("foyer_media_packets_lost_total",
			"RTP packets lost: direction in, missing from what door stations and answering devices sent (sequence gaps); out, reported lost by the receivers of what this node sent (RTCP receiver reports).",
			[]string{"direction"}, nil),
		"started": d("foyer_media_sessions_total", "Media sessions created on this node."),
	}}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.e.Stats()
	emit := func(k string, t prometheus.ValueType, v float64) {
		if m, err := prometheus.NewConstMetric(c.descs[k], t, v); err == nil { // err only for a malformed desc
			ch <- m
		}
	}
	counter := func(k string, v uint64) { emit(k, prometheus.CounterValue, float64(v)) }
	gauge := func(k string, v int) { emit(k, prometheus.GaugeValue, float64(v)) }
	counter("door_packets", st.DoorPackets)
	counter("door_bytes", st.DoorBytes)
	counter("fwd_packets", st.ForwardedPackets)
	counter("fwd_bytes", st.ForwardedBytes)
	counter("device_pkts", st.DevicePackets)
	counter("write_errors", st.WriteErrors)
	counter("malformed", st.Malformed)
	counter("plis", st.PLIsSent)
	counter("kf_requests", st.KeyframeRequests)
	counter("started", st.Started)
	for dir, v := range map[string]uint64{"in": st.LostIn, "out": st.LostOut} {
		if m, err := prometheus.NewConstMetric(c.descs["lost"], prometheus.CounterValue, float64(v), dir); err == nil {
			ch <- m
		}
	}
	gauge("active", st.Active)
	gauge("devices", st.Devices)
}
