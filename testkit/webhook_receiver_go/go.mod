module pipelines.invalid/testkit/webhook_receiver_go

go 1.22

require github.com/standard-webhooks/standard-webhooks/libraries v1.3.0
