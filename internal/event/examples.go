package event

// Examples returns a minimal valid data object for every type, as JSON. The docs, the demo and
// the benchmarks use them.
func Examples() map[string]string {
	return map[string]string{
		"pipewarden.data.batch":        `{"dataset":"customers","source":"s3://lake/customers/2026-11-26.csv","rows":120000,"schema":[{"name":"age","type":"int"},{"name":"income","type":"float"}],"digest":"sha256:9f2c1a"}`,
		"pipewarden.feature.transform": `{"pipeline":"customer-features","code_digest":"sha256:77aa01","actor":"ci-bot","approved":true}`,
		"pipewarden.training.run":      `{"run_id":"run-42","phase":"completed","actor":"alice","config":{"lr":0.001},"datasets":["sha256:9f2c1a"],"resources":{"gpus":4,"cpu_hours":12,"gpu_hours":48},"model_digest":"sha256:5e5e01"}`,
		"pipewarden.model.artifact":    `{"model":"fraud-detector","version":"7","digest":"sha256:5e5e01","action":"registered","actor":"alice","signed":true,"path":"models/fraud/7"}`,
		"pipewarden.model.metric":      `{"model":"fraud-detector","metric":"auc","value":0.94,"dataset":"holdout-2026-11"}`,
		"pipewarden.deploy.change":     `{"endpoint":"fraud-api","model_digest":"sha256:5e5e01","actor":"cd-bot","approved":true}`,
		"pipewarden.inference.request": `{"endpoint":"fraud-api","client":"key-3f9a","status":200,"latency_ms":4.2,"features":[0.1,3,17.5]}`,
		"pipewarden.access.change":     `{"actor":"bob","principal":"bob","resource":"model-registry","role_before":"viewer","role_after":"admin"}`,
		"pipewarden.access.auth":       `{"principal":"bob","result":"failure","source_ip":"203.0.113.7"}`,
		"pipewarden.deps.change":       `{"project":"trainer","lockfile":"requirements.txt","added":["tensorfllow==2.15.0"],"removed":[],"changed":[]}`,
		"pipewarden.infra.config":      `{"resource":"k8s/serving/fraud-api","field":"spec.replicas","before":3,"after":0,"actor":"mallory"}`,
		"pipewarden.infra.network":     `{"source":"training/run-42","destination":"198.51.100.9","port":443,"bytes":734003200}`,
	}
}
