module github.com/tqflow/tqflow/services/signature-loader

go 1.26.0
