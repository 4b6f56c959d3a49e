package privacy

// RestoreMapForTest exposes the mapping to the black-box tests only.
func RestoreMapForTest(ss *Session) map[string]string { return ss.restoreMap() }
