FROM busybox
RUN <<EOF
echo hello $HOME
EOF
RUN <<-'SCRIPT' cat > /x && <<OTHER cat > /y
	tab stripped $A
	SCRIPT
second
OTHER
COPY <<EOF /etc/conf
key=$VALUE
EOF
RUN echo "a<<b" && echo c <<< d
