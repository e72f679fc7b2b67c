# escape=`
FROM windows
RUN dir c:\ `
    && echo done
COPY . c:\app\
