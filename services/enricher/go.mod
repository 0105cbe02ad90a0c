module github.com/tqflow/tqflow/services/enricher

go 1.26.0
