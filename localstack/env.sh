# Source this file (`. localstack/env.sh`) to point the AWS SDKs and the AWS CLI at
# the emulators that localstack/up.sh starts: every service at LocalStack, CloudTrail
# at moto's server. Dummy credentials; nothing here reaches AWS.
#
# Honoured if set before sourcing: LOCALSTACK_PORT (4566), MOTO_PORT (5000).

export AWS_ENDPOINT_URL="http://127.0.0.1:${LOCALSTACK_PORT:-4566}"
export AWS_ENDPOINT_URL_CLOUDTRAIL="http://127.0.0.1:${MOTO_PORT:-5000}"
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1 # boto3 and the AWS CLI read this one, not AWS_REGION
# Never read the developer's real ~/.aws files or ask the instance metadata service.
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true
# Emulators answer on loopback only: keep any HTTP(S) proxy of the environment out of it.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
# S3 addressing: with an IP-address endpoint such as 127.0.0.1 the SDKs' S3 endpoint
# rules already use path style (http://127.0.0.1:4566/bucket/key); with a host name
# (localhost) set force_path_style (Rust SDK) / addressing_style "path" (boto3).
