module github.com/tqflow/tqflow/services/exporter

go 1.26.0
