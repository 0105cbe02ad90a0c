module github.com/tqflow/tqflow/services/tqflow

go 1.26.0
