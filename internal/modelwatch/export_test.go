package modelwatch

// RollBackInPlace makes m roll back file by file, as it does for a model directory that is a
// mount point.
func RollBackInPlace(m *Manager) { m.inPlace = true }
